"""Only the service changes state (issue 21, item 3; probes Q3, Q4, Q5), on the real
``hprobust serve``: its MLflow UI (a real ``mlflow server``, MLflow's basic-auth app), a real
Ray head, SQLite MLflow, the API with a token and protected reads, and Chromium.

Before: without any credential, through the MLflow UI's REST API (what its pages call),
- Q3: setting ``hprobust.status=queued`` on a cancelled study made it run again;
- Q4: deleting a running study's experiment failed its driver;
- Q5: with ``HPROBUST_PROTECT_READS=true`` the API answered 401 but the UI served the same
  specs, metrics and ``trials.csv``.
Now the UI answers nothing without an account and changes nothing for the read-only one; the
study drivers and the API (which write the store directly) work as before, and a status tag
written by anyone else (here: someone holding the writer account) is ignored and reported."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from service.stack import Child, free_port, free_ports
from tests.service.conftest import ServeProcess, serve_env, tiny_spec, wait_for

pytestmark = pytest.mark.slow


class Ui:
    """The MLflow UI of the serve process: its URL and its two accounts."""

    def __init__(self, serve: ServeProcess, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        accounts = json.loads((serve.data_dir / "mlflow-accounts.json").read_text())
        self.reader = (accounts["reader"], accounts["reader_password"])
        self.writer = (accounts["writer"], accounts["writer_password"])

    def call(
        self, method: str, path: str, who: tuple[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", auth=who, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def serve(
    ray_head: Child, token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, Ui]]:
    """``hprobust serve`` with its MLflow UI, a token and protected reads."""
    data_dir = tmp_path_factory.mktemp("login-data")
    env = serve_env(
        ray_address=ray_head.url,
        ray_auth_token=ray_head.extra["token"],
        api_token=token,
        protect_reads="true",
        poll_interval_s=0.5,
    )
    mlflow_port, port = free_ports(2)
    proc = ServeProcess(
        ["--data-dir", str(data_dir), "--mlflow-port", str(mlflow_port)],
        env,
        data_dir / "serve.log",
        port,
    )
    proc.data_dir = data_dir  # type: ignore[attr-defined]
    proc.start(timeout_s=240)
    try:
        yield proc, Ui(proc, mlflow_port)
    finally:
        try:
            proc.terminate()
        finally:
            proc.cleanup()


def api_get(serve: ServeProcess, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{serve.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def submit(serve: ServeProcess, token: str, **changes: Any) -> str:
    r = httpx.post(
        f"{serve.url}/studies",
        json=tiny_spec(**changes),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def state(serve: ServeProcess, token: str, study_id: str) -> dict[str, Any]:
    r = api_get(serve, token, f"/studies/{study_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_accounts_are_private_and_the_reader_is_printed(serve, token) -> None:
    proc, ui = serve
    path = proc.data_dir / "mlflow-accounts.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(proc.data_dir.stat().st_mode) == 0o700  # reads protected: the store too
    out = proc.output()
    assert f"sign in as reader / {ui.reader[1]} (read-only)" in out
    assert ui.writer[1] not in out


@pytest.fixture(scope="module")
def q4(serve, token) -> dict[str, Any]:
    """Q4, played on a running study: what deleting its experiment (and setting its status
    tag) through the UI's REST and ajax paths answered without an account and with the
    reader's, then the study's end."""
    proc, ui = serve
    study_id = submit(proc, token, name="undeletable")
    wait_for(
        lambda: state(proc, token, study_id)["status"] in ("running", "finished"),
        timeout_s=300,
        what="the study to run",
    )
    seen_running = state(proc, token, study_id)["status"] == "running"
    experiment_id = state(proc, token, study_id)["experiment_id"]
    body = {"experiment_id": experiment_id}
    answers = {}
    for path in ("/api/2.0/mlflow/experiments/delete", "/ajax-api/2.0/mlflow/experiments/delete"):
        answers[path, "anonymous"] = ui.call("POST", path, json=body).status_code
        answers[path, "reader"] = ui.call("POST", path, ui.reader, json=body).status_code
    tag = {"experiment_id": experiment_id, "key": "hprobust.status", "value": "cancelled"}
    path = "/api/2.0/mlflow/experiments/set-experiment-tag"
    answers[path, "anonymous"] = ui.call("POST", path, json=tag).status_code
    final = wait_for(
        lambda: (s := state(proc, token, study_id))["status"] not in ("queued", "running") and s,
        timeout_s=600,
        what="the study to end",
    )
    return {"answers": answers, "final": final, "running": seen_running}


def test_q4_without_an_account_no_one_deletes_a_running_study(serve, q4) -> None:
    """Q4: the experiment of a running study cannot be deleted without an account (401) nor
    with the read-only one (403), on the REST and the UI's own (ajax) paths; the study runs to
    its end, recorded by its driver as before."""
    _, ui = serve
    assert q4["running"], "the attempts were made while the study ran"
    assert {who: code for (_, who), code in q4["answers"].items()} == {
        "anonymous": 401,
        "reader": 403,
    }, q4["answers"]
    final = q4["final"]
    assert final["status"] == "finished", final
    assert final["progress"]["finished"] == final["total_trials"]
    assert final["tampered"] is None
    got = ui.call(
        "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={final['experiment_id']}", ui.reader
    )
    assert got.status_code == 200 and got.json()["experiment"]["lifecycle_stage"] == "active"


def test_q5_protected_reads_give_nothing_without_the_reader_account(serve, token, q4) -> None:
    """Q5: reads protected. The API answers 401 without the token, and the UI answers 401 to
    the same reads (experiments, runs, metrics, ``trials.csv``) without an account; the reader
    account reads them."""
    proc, ui = serve
    study = q4["final"]
    assert httpx.get(f"{proc.url}/studies", timeout=60).status_code == 401
    assert (
        httpx.get(f"{proc.url}/studies/{study['id']}/trials?format=csv", timeout=60).status_code
        == 401
    )
    search = {"experiment_ids": [study["experiment_id"]], "max_results": 50}
    runs = ui.call("POST", "/api/2.0/mlflow/runs/search", ui.reader, json=search).json()["runs"]
    study_run = next(
        r for r in runs if {"key": "hprobust.kind", "value": "study"} in r["data"]["tags"]
    )
    run_id = study_run["info"]["run_id"]
    reads = [
        ("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={study['experiment_id']}", {}),
        ("POST", "/api/2.0/mlflow/runs/search", {"json": search}),
        ("POST", "/ajax-api/2.0/mlflow/runs/search", {"json": search}),
        (
            "GET",
            f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=trials_finished",
            {},
        ),
        ("GET", f"/get-artifact?path=trials.csv&run_uuid={run_id}", {}),
        ("GET", f"/get-artifact?path=spec.yaml&run_uuid={run_id}", {}),
        ("GET", "/", {}),
    ]
    for method, path, kwargs in reads:
        anonymous = ui.call(method, path, **kwargs)
        assert anonymous.status_code == 401, (path, anonymous.status_code)
        assert "arm,lr" not in anonymous.text and "kaiming" not in anonymous.text
        assert ui.call(method, path, ui.reader, **kwargs).status_code == 200, path
    csv = ui.call("GET", f"/get-artifact?path=trials.csv&run_uuid={run_id}", ui.reader).text
    assert csv.startswith("arm,lr")


def test_q3_a_status_tag_written_through_mlflow_does_not_run_a_cancelled_study(
    serve, token, ray_head: Child
) -> None:
    """Q3: ``hprobust.status=queued`` on a cancelled study. Without an account: 401. Even
    written with the writer account (as anyone holding MLflow write access could): the
    scheduler keeps the study cancelled, submits no job, sets the tag back and reports it
    (the API's ``tampered``)."""
    from ray.job_submission import JobSubmissionClient

    proc, ui = serve
    study_id = submit(proc, token, name="resurrected")
    r = httpx.post(
        f"{proc.url}/studies/{study_id}/cancel",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    jobs = JobSubmissionClient(
        ray_head.url, headers={"Authorization": f"Bearer {ray_head.extra['token']}"}
    )

    def jobs_of() -> list[str]:
        return [
            j.submission_id
            for j in jobs.list_jobs()
            if (j.metadata or {}).get("hprobust.study_id") == study_id
        ]

    before = jobs_of()
    experiment_id = state(proc, token, study_id)["experiment_id"]
    tag = {"experiment_id": experiment_id, "key": "hprobust.status", "value": "queued"}
    path = "/api/2.0/mlflow/experiments/set-experiment-tag"
    assert ui.call("POST", path, json=tag).status_code == 401
    assert ui.call("POST", path, ui.reader, json=tag).status_code == 403
    assert ui.call("POST", path, ui.writer, json=tag).status_code == 200
    reported = wait_for(
        lambda: (s := state(proc, token, study_id)).get("tampered") and s,
        timeout_s=60,
        what="the scheduler to report the status tag",
    )
    assert reported["status"] == "cancelled"
    assert "status tag 'queued' not signed" in reported["tampered"]
    experiment = ui.call(
        "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}", ui.reader
    ).json()["experiment"]
    tags = {t["key"]: t["value"] for t in experiment["tags"]}
    assert tags["hprobust.status"] == "cancelled"  # set back
    assert "not signed" in tags["hprobust.tampered"]
    time.sleep(3)  # several scheduler passes (0.5 s): none of them submits it
    assert jobs_of() == before
    assert state(proc, token, study_id)["status"] == "cancelled"
    assert "status tag 'queued' not signed" in proc.output()  # the log line


def test_the_mlflow_ui_in_chromium_asks_for_an_account(serve, token, q4) -> None:
    """In Chromium: without an account the UI asks for one (a 401, no page); signed in as the
    reader, the link the API hands out opens the study's runs, and a change
    from the UI's own page is refused (403)."""
    from playwright import sync_api as playwright

    _, ui = serve
    study = q4["final"]
    link = study["links"]["mlflow"]
    assert link.startswith(ui.url)
    delete = (
        "async (id) => (await fetch('/ajax-api/2.0/mlflow/experiments/delete', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({experiment_id:"
        " id})})).status"
    )
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            anonymous = browser.new_page()
            # the 401 asks for an account, and a headless browser has none to give (a change
            # without one is a 401: test_q4; in a page, the browser would wait for a login)
            with pytest.raises(playwright.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.goto(link)
            reader = browser.new_context(
                viewport={"width": 1400, "height": 900},
                http_credentials={"username": ui.reader[0], "password": ui.reader[1]},
            ).new_page()
            response = reader.goto(link, wait_until="load")
            assert response is not None and response.status == 200
            experiment = f"{study['name']} · {study['id']}"  # the study's experiment
            reader.get_by_text(experiment, exact=True).first.wait_for(timeout=90_000)
            assert reader.evaluate(delete, study["experiment_id"]) == 403
        finally:
            browser.close()
    got = ui.call(
        "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={study['experiment_id']}", ui.reader
    )
    assert got.json()["experiment"]["lifecycle_stage"] == "active"


def test_the_service_sets_up_the_reader_on_a_basic_auth_mlflow_server(
    tmp_path, monkeypatch
) -> None:
    """Compose's path (``HPROBUST_MLFLOW_URI`` on a basic-auth MLflow server): the API, as the
    writer its environment names, creates the reader with ``HPROBUST_MLFLOW_READER_PASSWORD``,
    and sets the new password when it changes; without the writer it does nothing."""
    from service.core.config import Settings
    from service.launcher import ensure_remote_reader
    from service.mlflow_auth import load_or_create_accounts, server_env
    from service.stack import start_mlflow_ui
    from study.records.store import sqlite_uri

    accounts = load_or_create_accounts(tmp_path)
    ui = start_mlflow_ui(
        backend_store_uri=sqlite_uri(tmp_path),
        artifact_root=tmp_path / "mlartifacts",
        port=free_port(),
        log_dir=tmp_path,
        auth_env=server_env(tmp_path, accounts),
    )
    try:
        search = f"{ui.url}/api/2.0/mlflow/experiments/search?max_results=1"
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        settings = Settings(
            data_dir=tmp_path, mlflow_uri=ui.url, mlflow_reader_password="first-password-123"
        )
        assert ensure_remote_reader(settings) is None  # no writer: nothing to do it with
        assert httpx.get(search, auth=("reader", "first-password-123")).status_code == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", accounts.writer)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", accounts.writer_password)
        line = ensure_remote_reader(settings)
        assert line is not None and line.startswith("sign in as reader (read-only")
        assert httpx.get(search, auth=("reader", "first-password-123")).status_code == 200
        changed = settings.model_copy(
            update={"mlflow_reader_password": SecretStr("second-password-456")}
        )
        ensure_remote_reader(changed)
        assert httpx.get(search, auth=("reader", "first-password-123")).status_code == 401
        assert httpx.get(search, auth=("reader", "second-password-456")).status_code == 200
        assert httpx.get(search).status_code == 401
    finally:
        ui.stop(grace_s=10)
