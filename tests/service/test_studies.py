"""The service layer (service/studies.py) under real uvicorn, run in this process so the study
store's calls can be counted: a real :class:`~study.records.store.StudyStore` on a SQLite MLflow
store, wrapped to count calls. No Ray: the studies are written into the store directly the
way a driver writes them, and nothing here asks Ray (a request that did would fail: the Jobs
API address answers nothing).

What the counts hold: a request reads a study's record once (not once per part it shows), and
the report learns which plots exist from one listing, without downloading them."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from study.analysis.rows import TRIAL_FIELDS
from study.records.formats import trials_csv
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from study.vocab import PlotName, StudyStatus
from tests.study.records.test_records import SPEC, trial_run

pytestmark = pytest.mark.server  # uvicorn in a thread: not in `make check`

TOKEN = "test-token-0123456789"
#: The store reads the counts watch.
READS = ("get", "states", "ping", "progress", "trials", "summary", "plot", "plot_names")


class CountingStore:
    """A real StudyStore, every call of a read in READS counted (by name)."""

    def __init__(self, store: StudyStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name not in READS:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def finished_study(store: StudyStore, tmp_path: Path, *, plots: list[str]) -> str:
    """A finished study of 4 trials with its summary, trials.csv and ``plots`` stored."""
    sid = store.create_study(parse_spec(SPEC)).id
    for i, (arm, point) in enumerate([("sgd", 0), ("sgd", 1), ("insgd", 0), ("insgd", 1)]):
        trial_run(store, sid, arm=arm, point=point, seed=0, status="finished", acc=0.5 + i / 10)
    store.set_status(sid, StudyStatus.RUNNING)
    paths = []
    for name in plots:
        path = tmp_path / f"{name}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode() * 50)
        paths.append(path)
    summary = dict(store.summary(sid), partial=False)
    store.store_results(sid, summary, store.trials(sid), paths)
    store.set_status(sid, StudyStatus.FINISHED)
    return sid


class Served:
    def __init__(self, url: str, store: CountingStore, finished: str, partial: str) -> None:
        self.url, self.store, self.finished, self.partial = url, store, finished, partial

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        self.store.calls.clear()
        return httpx.get(f"{self.url}{path}", timeout=60, **kwargs)

    def post(self, path: str) -> httpx.Response:
        self.store.calls.clear()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.post(f"{self.url}{path}", headers=headers, timeout=60)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """``app`` under real uvicorn in a thread of this process; its URL while it runs."""
    import uvicorn

    from service.stack import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def app_on(tmp: Path, store: Any, **settings: Any) -> Any:
    """The API over ``store`` (no scheduler loop, no Ray: its address answers nothing)."""
    from service.core.config import Settings
    from service.jobs import StudyJobs
    from service.main import create_app
    from service.stack import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    jobs = StudyJobs(nowhere, tracking_uri=sqlite_uri(tmp), storage=tmp / "tune", data_dir=tmp)
    config = Settings(data_dir=tmp, api_token=TOKEN, **settings)
    return create_app(config, store=store, jobs=jobs, run_scheduler=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn in a thread, with the read cache off (every request reads the
    store: the counts are a request's own), over a finished study with 2 of its 4 plots and a
    running one."""
    tmp = tmp_path_factory.mktemp("service-layer")
    real = StudyStore(sqlite_uri(tmp))
    finished = finished_study(real, tmp, plots=[PlotName.PROFILE, PlotName.LR_CURVES])
    partial = real.create_study(parse_spec(SPEC)).id
    real.set_status(partial, StudyStatus.RUNNING)
    trial_run(real, partial, arm="sgd", point=0, seed=0, status="finished", acc=0.7)
    store = CountingStore(real)
    app = app_on(tmp, store, read_cache=False)
    with serve_in_thread(app) as url:
        yield Served(url, store, finished, partial)


def test_a_report_reads_the_record_once_and_lists_the_plots(served: Served) -> None:
    """Before: 7 record reads (route, progress, summary, one per plot) and 4 PNG downloads to
    learn which plots exist. Now: one of each read, and the plots listed, not downloaded."""
    page = served.get(f"/studies/{served.finished}/report")
    assert page.status_code == 200, page.text
    assert served.store.calls == Counter(get=1, progress=1, summary=1, plot_names=1)
    # the plots stored, in report order, and only those
    assert page.text.count("<img ") == 2
    assert page.text.index("plots/lr_curves.png") < page.text.index("plots/profile.png")
    assert "plots/heatmap.png" not in page.text


def test_a_live_study_s_report_does_not_look_for_plots(served: Served) -> None:
    page = served.get(f"/studies/{served.partial}/report")
    assert page.status_code == 200 and "<img " not in page.text
    assert served.store.calls == Counter(get=1, progress=1, summary=1)


@pytest.mark.parametrize(
    ("path", "reads"),
    [
        ("", Counter(get=1, progress=1)),
        ("/summary", Counter(get=1, summary=1)),
        ("/trials", Counter(get=1, trials=1)),
        ("/plots/profile.png", Counter(get=1, plot=1)),
    ],
)
def test_each_read_reads_the_record_once(served: Served, path: str, reads: Counter) -> None:
    response = served.get(f"/studies/{served.finished}{path}")
    assert response.status_code == 200, response.text
    assert served.store.calls == reads


def test_the_list_of_studies_reads_no_record_or_spec(served: Served) -> None:
    """GET /studies shows no spec: one listing of the studies' states, no record read (a
    record may download its spec), whatever the number of studies."""
    listed = served.get("/studies")
    assert listed.status_code == 200, listed.text
    ids = {s["id"] for s in listed.json()["data"]}
    assert {served.finished, served.partial} <= ids
    assert "spec" not in listed.json()["data"][0]
    # each study's progress is shown (one read each), but never its record
    assert served.store.calls == Counter(states=1, progress=len(ids))


def test_readiness_pings_mlflow_once_and_reads_no_study(served: Served) -> None:
    ready = served.get("/readyz")  # Ray's address answers nothing here: 503, MLflow "ok"
    assert ready.status_code == 503, ready.text
    assert ready.json()["mlflow"] == "ok" and ready.json()["ray"].startswith("unreachable")
    assert served.store.calls == Counter(ping=1)


def test_a_plot_not_stored_is_404(served: Served) -> None:
    response = served.get(f"/studies/{served.finished}/plots/heatmap.png")
    assert response.status_code == 404
    assert "has no plot 'heatmap' yet (status finished)" in response.json()["detail"]


def test_plot_names_lists_without_downloading(tmp_path: Path) -> None:
    """StudyStore.plot_names: one list_artifacts call, no download, PlotName order."""
    store = StudyStore(sqlite_uri(tmp_path))
    sid = finished_study(store, tmp_path, plots=[PlotName.EXPECTED_MAX, PlotName.HEATMAP])
    calls: Counter[str] = Counter()
    client = store.client

    class Client:
        def __getattr__(self, name: str) -> Any:
            calls[name] += 1
            return getattr(client, name)

    store.client = Client()
    assert store.plot_names(sid) == [PlotName.HEATMAP, PlotName.EXPECTED_MAX]
    assert calls["list_artifacts"] == 1 and calls["download_artifacts"] == 0


def test_the_trials_csv_has_the_design_columns_then_the_rest(served: Served) -> None:
    """One CSV writer (study.records.formats.trials_csv): the stored trials.csv, the CLI's and
    the API's CSV have the trial-row columns first, in that order, then every other column by
    name."""
    response = served.get(f"/studies/{served.finished}/trials", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = f'attachment; filename="{served.finished}-trials.csv"'
    assert response.headers["content-disposition"] == disposition
    table = list(csv.DictReader(io.StringIO(response.text)))
    header = list(table[0])
    assert header[: len(TRIAL_FIELDS)] == list(TRIAL_FIELDS)
    rest = header[len(TRIAL_FIELDS) :]
    assert rest == sorted(rest) and {"key", "run_id", "train_loss"} <= set(rest)
    assert [r["arm"] for r in table] == ["sgd", "sgd", "insgd", "insgd"]
    assert [r["val_acc"] for r in table] == ["0.5", "0.6", "0.7", "0.8"]
    assert table[0]["epochs_completed"] == ""  # None is an empty cell
    rows = [{"arm": "a", "status": "finished", "extra": 1, "lr": None}]
    assert trials_csv(rows).splitlines() == [
        ",".join(TRIAL_FIELDS) + ",extra",
        "a,,,,,,,,finished,1",
    ]


def test_cancel_of_an_ended_study_is_refused_before_the_scheduler(served: Served) -> None:
    """409 from the service layer's check: Ray (unreachable here) is never asked."""
    response = served.post(f"/studies/{served.finished}/cancel")
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"study {served.finished} is finished: only a queued or running study can be cancelled"
    )


def test_resume_and_cancel_share_their_shape(served: Served) -> None:
    """Both read the study fresh, act, and answer the study as it is after: a 404 for an
    unknown id, a 409 for the wrong state, the new state otherwise."""
    unknown = "s20990101-000000-000000"
    for action in ("cancel", "resume"):
        response = served.post(f"/studies/{unknown}/{action}")
        assert response.status_code == 404, response.text
    finished = served.post(f"/studies/{served.finished}/resume")
    assert finished.status_code == 409
    assert "is finished: there is nothing to resume" in finished.json()["detail"]
    running = served.post(f"/studies/{served.partial}/resume")
    assert running.status_code == 409
    assert "only a failed or cancelled study can be resumed" in running.json()["detail"]


def test_the_bearer_token_guards_writes_and_protected_reads(tmp_path: Path) -> None:
    """FastAPI's HTTPBearer reads the header; the answers stay the service's: 401 with
    ``WWW-Authenticate: Bearer`` and what is wrong. Reads need the token only with
    ``protect_reads``; the OpenAPI schema declares it on the POSTs only."""
    store = StudyStore(sqlite_uri(tmp_path))
    sid = store.create_study(parse_spec(SPEC)).id
    needs = "this request needs 'Authorization: Bearer <token>'"
    for protect in (False, True):
        with serve_in_thread(app_on(tmp_path, store, protect_reads=protect)) as url:
            for headers, detail in [
                ({}, needs),
                ({"Authorization": TOKEN}, needs),  # no scheme
                ({"Authorization": f"Basic {TOKEN}"}, needs),
                ({"Authorization": f"Bearer wrong-{TOKEN}"}, "invalid bearer token"),
            ]:
                denied = httpx.post(f"{url}/studies/{sid}/resume", headers=headers, timeout=60)
                assert denied.status_code == 401, denied.text
                assert denied.headers["www-authenticate"] == "Bearer"
                assert denied.json() == {"detail": detail}
                read = httpx.get(f"{url}/studies/{sid}", headers=headers, timeout=60)
                assert read.status_code == (401 if protect else 200), read.text
                if protect:
                    assert read.json() == {"detail": detail}
                suites = httpx.get(f"{url}/suites", headers=headers, timeout=60)
                assert suites.status_code == (401 if protect else 200), suites.text
                cancel = httpx.post(f"{url}/suites/u20261206-000000-abcdef/cancel", headers=headers)
                assert cancel.status_code == 401, cancel.text
            ok = {"Authorization": f"bearer  {TOKEN}"}  # the scheme in any case, spaces
            assert httpx.get(f"{url}/studies/{sid}", headers=ok, timeout=60).status_code == 200
            resumed = httpx.post(f"{url}/studies/{sid}/resume", headers=ok, timeout=60)
            assert resumed.status_code == 409  # past the token: queued, nothing to resume
            schema = httpx.get(f"{url}/openapi.json", timeout=60).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    secured = sorted(
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"HTTPBearer": []}]
    )
    assert secured == [
        "POST /studies",
        "POST /studies/{study_id}/cancel",
        "POST /studies/{study_id}/resume",
        "POST /suites",
        "POST /suites/{suite_id}/cancel",
        "POST /suites/{suite_id}/resume",
    ]
