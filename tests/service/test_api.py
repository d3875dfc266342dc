"""The API under a real ``hprobust serve`` (uvicorn) on a real Ray head with a SQLite MLflow:
a digits study from POST to summary, auth, 404/409/413/422, queueing and cancel."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.service.conftest import ServeProcess, tiny_spec, wait_for

pytestmark = pytest.mark.slow

STUDY_TIMEOUT_S = 240


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def experiments(api: ServeProcess) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{api.data_dir / 'mlflow.db'}")
    return sorted(e.name for e in client.search_experiments())


def trial_runs(api: ServeProcess, study_id: str) -> list[Any]:
    """The study's trial runs, read straight from the served MLflow store."""
    from study.records.store import StudyStore

    return StudyStore(f"sqlite:///{api.data_dir / 'mlflow.db'}").trial_runs(study_id)


def study_state(api: ServeProcess, study_id: str) -> dict[str, Any]:
    response = httpx.get(f"{api.url}/studies/{study_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(
    api: ServeProcess, study_id: str, statuses: tuple[str, ...], timeout_s: float = STUDY_TIMEOUT_S
) -> dict[str, Any]:
    return wait_for(
        lambda: (s := study_state(api, study_id))["status"] in statuses and s,
        timeout_s=timeout_s,
        what=f"study {study_id} to be {'/'.join(statuses)}",
    )


@pytest.fixture(scope="module")
def finished_study(api: ServeProcess, api_token: str) -> dict[str, Any]:
    """The tiny digits study, POSTed as YAML and run to the end."""
    response = httpx.post(
        f"{api.url}/studies",
        content=yaml.safe_dump(tiny_spec(name="e2e")),
        headers={**auth(api_token), "Content-Type": "application/yaml"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued"
    # accepted, with what the tiny design cannot support
    assert any(w.startswith("only 1 seed: no replicate intervals") for w in created["warnings"])
    assert any(w.startswith("search.lr spans 2 decades") for w in created["warnings"])
    assert any(w.startswith("2 points per arm (fewer than 6)") for w in created["warnings"])
    assert response.headers["location"].endswith(f"/studies/{created['id']}")
    state = wait_status(api, created["id"], ("finished", "failed", "cancelled"))
    assert state["status"] == "finished", api.output()[-3000:]
    return {"created": created, "state": state}


def test_health_and_readiness(api: ServeProcess) -> None:
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "ray": "ok", "mlflow": "ok", "disk": "ok"}


def test_mutations_need_the_token(api: ServeProcess, api_token: str) -> None:
    before = experiments(api)
    for headers in ({}, auth("wrong-" + api_token), {"Authorization": api_token}):
        r = httpx.post(f"{api.url}/studies", json=tiny_spec(), headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        r = httpx.post(f"{api.url}/studies/s20261125-000000-abcdef/cancel", headers=headers)
        assert r.status_code == 401, r.text
    assert experiments(api) == before  # nothing was created
    assert httpx.get(f"{api.url}/studies").status_code == 200  # reads stay open


def test_bad_spec_is_422_naming_the_field_and_creates_nothing(
    api: ServeProcess, api_token: str
) -> None:
    listed = httpx.get(f"{api.url}/studies").json()
    before = experiments(api)
    bad = tiny_spec(search={"lr": {"low": -1, "high": 1}, "init": ["kaiming_normal"]})
    cases = [
        (bad, "search.lr.low", -1),
        (tiny_spec(epochs=51), "epochs", 51),  # over HPROBUST_MAX_EPOCHS=50
        (tiny_spec(trials_per_arm=21), "trials_per_arm", 21),  # 2 x 21 > 40 trials
        (tiny_spec(optimizer_typo=1), "optimizer_typo", 1),
        (tiny_spec(model={"name": "no_such_model"}), "model.name", "no_such_model"),
    ]
    for spec, field, value in cases:
        r = httpx.post(f"{api.url}/studies", json=spec, headers=auth(api_token), timeout=30)
        assert r.status_code == 422, r.text
        body = r.json()
        problem = next(p for p in body["problems"] if p["field"] == field)
        assert problem["value"] == value
        assert field in body["detail"] and problem["rule"]
    r = httpx.post(
        f"{api.url}/studies",
        content=b"name: [unclosed",
        headers={**auth(api_token), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "body"
    assert httpx.get(f"{api.url}/studies").json() == listed
    assert experiments(api) == before


def test_oversized_body_is_413(api: ServeProcess, api_token: str) -> None:
    before = experiments(api)
    big = tiny_spec(name="x" * 20_000)  # the limit is 8192 bytes
    r = httpx.post(f"{api.url}/studies", json=big, headers=auth(api_token))
    assert r.status_code == 413, r.text
    assert "8192" in r.json()["detail"]

    def chunks():  # no Content-Length: the middleware counts the streamed bytes
        for _ in range(20):
            yield b" " * 1000

    r = httpx.post(
        f"{api.url}/studies",
        content=chunks(),
        headers={**auth(api_token), "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert experiments(api) == before


def test_unknown_study_is_404(api: ServeProcess, api_token: str) -> None:
    for study_id in ("s20200101-000000-abcdef", "not-an-id"):
        for path in ("", "/trials", "/summary", "/report", "/plots/heatmap.png"):
            r = httpx.get(f"{api.url}/studies/{study_id}{path}")
            assert r.status_code == 404, (path, r.text)
            detail = r.text if path == "/report" else r.json()["detail"]  # the report: a page
            assert study_id in detail
        before = experiments(api)
        r = httpx.post(f"{api.url}/studies/{study_id}/cancel", headers=auth(api_token))
        assert r.status_code == 404
        assert experiments(api) == before  # a 404 changes nothing


def test_study_from_post_to_summary(api: ServeProcess, finished_study: dict[str, Any]) -> None:
    study_id = finished_study["created"]["id"]
    state = finished_study["state"]
    assert state["progress"] == {
        "finished": 4,
        "running": 0,
        "pending": 0,
        "diverged": 0,
        "failed": 0,
        "total": 4,
    }
    assert state["started_at"] and state["finished_at"] and state["eta_s"] is None
    assert (
        state["links"]["mlflow"]
        == f"http://127.0.0.1:5999/#/experiments/{state['experiment_id']}/runs"
        "?workflowType=machine_learning&viewStateShareKey=hprobust"
    )
    assert state["spec"]["name"] == "e2e"

    listed = httpx.get(f"{api.url}/studies").json()["data"]
    assert study_id in [s["id"] for s in listed]
    created = [s["created_at"] for s in listed]
    assert created == sorted(created, reverse=True)  # newest first

    trials = httpx.get(f"{api.url}/studies/{study_id}/trials").json()
    assert trials["count"] == 4
    rows = trials["data"]
    assert sorted(r["arm"] for r in rows) == ["insgd", "insgd", "sgd", "sgd"]
    assert all(r["status"] == "finished" and 0 <= r["val_acc"] <= 1 for r in rows)
    # paired: both arms ran the same learning rates
    assert sorted(r["lr"] for r in rows if r["arm"] == "sgd") == sorted(
        r["lr"] for r in rows if r["arm"] == "insgd"
    )
    text = httpx.get(f"{api.url}/studies/{study_id}/trials", params={"format": "csv"}).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 4 and {"arm", "lr", "init", "val_acc", "status"} <= set(table[0])

    summary = httpx.get(f"{api.url}/studies/{study_id}/summary").json()
    assert summary["partial"] is False
    assert list(summary["arms"]) == ["sgd", "insgd"]
    assert summary["version"] == 3 and summary["arms"]["sgd"]["n_trials"] == 2
    best = max(r["val_acc"] for r in rows if r["arm"] == "insgd")
    assert summary["arms"]["insgd"]["best"] == pytest.approx(best)
    assert summary["comparisons"][0]["arm"] == "insgd"
    assert summary["comparisons"][0]["n_points"] == 2
    assert summary["comparisons"][0]["verdict"] == "not_enough_data"  # 1 seed, 2 points

    for stem in ("lr_curves", "heatmap", "profile", "expected_max"):
        r = httpx.get(f"{api.url}/studies/{study_id}/plots/{stem}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content.startswith(b"\x89PNG\r\n\x1a\n") and len(r.content) > 5000
    assert httpx.get(f"{api.url}/studies/{study_id}/plots/nope.png").status_code == 404

    page = httpx.get(f"{api.url}/studies/{study_id}/report").text
    assert 'http-equiv="refresh"' not in page  # finished: no more refreshing
    assert "insgd" in page and page.count("<img ") == 4
    assert (
        "insgd vs sgd: <span" in page and ">not enough data for a verdict (1 seed, 2 points" in page
    )
    assert " — AUC " in page and " over 1 seed, LR window " in page


BASELINE_ARMS = [
    {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
    {"name": "adam", "optimizer": "adam", "betas": [0.9, 0.99], "weight_decay": 1e-4},
    {"name": "adagrad", "optimizer": "adagrad", "initial_accumulator_value": 0.1},
]


@pytest.fixture(scope="module")
def baseline_study(api: ServeProcess, api_token: str) -> dict[str, Any]:
    """The INSGD paper's baselines beside SGD: sgd, adam and adagrad arms, run to the end."""
    spec = tiny_spec(name="baselines", arms=BASELINE_ARMS, epochs=1)
    response = httpx.post(f"{api.url}/studies", json=spec, headers=auth(api_token), timeout=60)
    assert response.status_code == 202, response.text
    created = response.json()
    state = wait_status(api, created["id"], ("finished", "failed", "cancelled"))
    assert state["status"] == "finished", api.output()[-3000:]
    return {"created": created, "state": state}


def test_baseline_optimizers_from_post_to_summary(
    api: ServeProcess, baseline_study: dict[str, Any]
) -> None:
    study_id = baseline_study["created"]["id"]
    assert baseline_study["state"]["progress"]["finished"] == 6
    rows = httpx.get(f"{api.url}/studies/{study_id}/trials").json()["data"]
    assert sorted(r["arm"] for r in rows) == ["adagrad"] * 2 + ["adam"] * 2 + ["sgd"] * 2
    assert all(r["status"] == "finished" and 0 <= r["val_acc"] <= 1 for r in rows)
    lrs = {arm: sorted(r["lr"] for r in rows if r["arm"] == arm) for arm in ("sgd", "adam")}
    assert lrs["sgd"] == lrs["adam"]  # paired
    summary = httpx.get(f"{api.url}/studies/{study_id}/summary").json()
    assert summary["partial"] is False
    assert list(summary["arms"]) == ["sgd", "adam", "adagrad"]
    for arm in ("adam", "adagrad"):  # a diverged trial counts as chance (docs/summary.md)
        best = max(0.1 if r["diverged"] else r["val_acc"] for r in rows if r["arm"] == arm)
        assert summary["arms"][arm]["best"] == pytest.approx(best)
    assert [c["arm"] for c in summary["comparisons"]] == ["adam", "adagrad"]
    # Each arm trained with its own hyperparameters (MLflow params of its trial runs).
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{api.data_dir / 'mlflow.db'}")
    experiment_id = baseline_study["state"]["experiment_id"]
    runs = client.search_runs([experiment_id], "tags.`hprobust.kind` = 'trial'")
    params = {r.data.params["arm"]: r.data.params for r in runs}
    assert params["adam"]["optimizer"] == "adam" and params["adam"]["betas"] == "[0.9, 0.99]"
    assert params["adam"]["weight_decay"] == "0.0001"
    assert params["adagrad"]["initial_accumulator_value"] == "0.1"


def test_resources_beyond_the_largest_node_are_422(api: ServeProcess, api_token: str) -> None:
    """Issue 10: 4 CPUs per trial on a 2-CPU head was accepted and hung. The API reads the
    cluster's nodes from the Ray dashboard and refuses, naming field, rule, value and the
    node's capacity; nothing is created. What fits is accepted (tested by every other POST)."""
    before = experiments(api)
    cases = {
        "resources.cpus_per_trial": (
            {"cpus_per_trial": 4, "max_concurrent_trials": 1},
            "must be <= 2, the CPUs of the largest node of the Ray cluster",
        ),
        "resources.gpus_per_trial": (
            {"cpus_per_trial": 1, "gpus_per_trial": 1},
            "must be 0: the Ray cluster has no GPU",
        ),
    }
    for field, (resources, rule) in cases.items():
        r = httpx.post(
            f"{api.url}/studies",
            json=tiny_spec(name="too-big", resources=resources),
            headers=auth(api_token),
            timeout=60,
        )
        assert r.status_code == 422, r.text
        (problem,) = r.json()["problems"]
        assert problem["field"] == field
        assert problem["value"] == resources[field.split(".")[1]]
        assert problem["rule"].startswith(rule), problem
        assert "1 node with 2 CPUs and 0 GPUs" in problem["rule"], problem
    assert experiments(api) == before


def test_cancel_of_a_finished_study_is_409(
    api: ServeProcess, api_token: str, finished_study: dict[str, Any]
) -> None:
    study_id = finished_study["created"]["id"]
    r = httpx.post(f"{api.url}/studies/{study_id}/cancel", headers=auth(api_token), timeout=60)
    assert r.status_code == 409, r.text
    assert "finished" in r.json()["detail"]
    assert study_state(api, study_id)["status"] == "finished"


def test_queue_and_cancel(
    api: ServeProcess, api_token: str, ray_head, finished_study: dict[str, Any]
) -> None:
    """With one study slot, a second study waits queued; cancelling stops the running one's
    Ray job and keeps its finished trials; a cancelled study cannot be cancelled again."""
    from ray.job_submission import JobSubmissionClient

    # Long enough that trials are still in flight when it is cancelled, on a quiet machine too
    # (30 epochs of 3 points took ~1.5 s a trial there: the study could end before the cancel):
    # 20 trials of 50 epochs at batch 16, two at a time, run for about a minute.
    long = tiny_spec(name="long", epochs=50, trials_per_arm=10, batch_size=16)
    total = 2 * 10  # arms x points x seeds
    ids = []
    for spec in (long, tiny_spec(name="waiting")):
        r = httpx.post(f"{api.url}/studies", json=spec, headers=auth(api_token), timeout=60)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    running_id, waiting_id = ids
    wait_for(
        lambda: study_state(api, running_id)["progress"]["finished"] >= 1,
        timeout_s=STUDY_TIMEOUT_S,
        what="a finished trial of the long study",
    )
    wait_for(  # trials in flight (50 epochs each): the cancel below must close them
        lambda: study_state(api, running_id)["progress"]["running"] >= 1,
        timeout_s=STUDY_TIMEOUT_S,
        what="a running trial of the long study",
        poll_s=0.3,
    )
    state = study_state(api, running_id)
    assert state["status"] == "running" and state["job"] == running_id
    assert state["eta_s"] is not None and state["eta_s"] > 0
    waiting = study_state(api, waiting_id)
    assert waiting["status"] == "queued" and waiting["job"] is None
    page = httpx.get(f"{api.url}/studies/{running_id}/report").text
    assert 'http-equiv="refresh"' in page and "Provisional: " in page  # live page
    assert "No verdict until the study ends" in page and 'class="verdict v-pending"' in page
    assert "<img " not in page  # no plots before the end (no broken images)
    partial = httpx.get(f"{api.url}/studies/{running_id}/summary").json()
    assert partial["partial"] is True
    assert [c["verdict"] for c in partial["comparisons"]] == ["pending"]

    r = httpx.post(f"{api.url}/studies/{waiting_id}/cancel", headers=auth(api_token), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    finished_before = study_state(api, running_id)["progress"]["finished"]
    r = httpx.post(f"{api.url}/studies/{running_id}/cancel", headers=auth(api_token), timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    jobs = JobSubmissionClient(
        ray_head.url, headers={"Authorization": f"Bearer {ray_head.extra['token']}"}
    )
    assert str(jobs.get_job_status(running_id)) in ("STOPPED", "FAILED")
    with pytest.raises(RuntimeError, match="does not exist"):
        jobs.get_job_status(waiting_id)  # never submitted
    after = study_state(api, running_id)
    assert after["status"] == "cancelled"
    assert after["progress"]["finished"] >= finished_before
    # Issue 10: in-flight trial runs stayed RUNNING for good and the API said running = 2.
    # Now every trial run has ended: the in-flight ones KILLED, counted pending.
    runs = trial_runs(api, running_id)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert killed, "no trial was in flight at the cancel"
    assert all(r.data.tags["hprobust.status"] == "pending" for r in killed)
    assert all(r.data.tags["hprobust.stopped"] == "study cancelled" for r in killed)
    assert after["progress"]["running"] == 0
    assert after["progress"]["pending"] == total - after["progress"]["finished"]
    assert after["progress"]["failed"] == 0
    r = httpx.post(f"{api.url}/studies/{running_id}/cancel", headers=auth(api_token))
    assert r.status_code == 409
    # The cancelled study's pages show no running or pending counts (they could be stale).
    for page_url in (f"{api.url}/studies/{running_id}/report", f"{api.url}/"):
        page = httpx.get(page_url).text
        block = page.split(f'data-study="{running_id}"', 1)[1]
        text = block.split('class="progress-text">', 1)[1].split("</span>", 1)[0]
        assert "running" not in text and "to go" not in text, text
        assert text.startswith(f"{after['progress']['finished']} of {total} finished"), text


def test_a_study_cancelled_at_once_and_resumed_holds_up_no_later_study(
    api: ServeProcess, api_token: str, finished_study: dict[str, Any]
) -> None:
    """Issue 21, probe B2 as filed: cancel a study as soon as its Ray job is submitted (half
    a second after the POST), then resume it. The scheduler resubmitted it every pass under
    its cancelled job's submission id, Ray refused ("submission_id ... already exists"), the
    study showed ``paused: ray unreachable`` while ``/readyz`` said ready, and every later
    study stayed queued. Now it runs under the next submission id, ``/readyz`` and the study
    agree (ready; nothing paused), and the later study runs to the end after it.

    Through HTTP the cancel can land on either side of the driver's start: a warm driver
    (``HPROBUST_WARM_DRIVER_S``) takes the study within a quarter second of the POST, so
    whether ``started_at`` is set at the cancel is a race this test does not pin. Both orders
    must come out the same here; the window before the start is pinned in
    ``tests/service/test_scheduler.py``, which drives the scheduler's passes itself."""
    r = httpx.post(
        f"{api.url}/studies", json=tiny_spec(name="b2-cancelled"), headers=auth(api_token)
    )
    assert r.status_code == 202, r.text
    first = r.json()["id"]
    wait_for(  # submitted: its job exists (its driver may or may not have started it)
        lambda: study_state(api, first)["job"] == first,
        timeout_s=60,
        what="the study's job",
        poll_s=0.1,
    )
    r = httpx.post(f"{api.url}/studies/{first}/cancel", headers=auth(api_token), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = httpx.post(f"{api.url}/studies/{first}/resume", headers=auth(api_token), timeout=60)
    assert r.status_code == 202, r.text
    r = httpx.post(f"{api.url}/studies", json=tiny_spec(name="b2-later"), headers=auth(api_token))
    assert r.status_code == 202, r.text
    later = r.json()["id"]

    state = wait_for(
        lambda: (s := study_state(api, first))["job"] == f"{first}-r1" and s,
        timeout_s=60,
        what="the resumed study's new job",
    )
    assert state["paused"] is None, state
    ready = httpx.get(f"{api.url}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["ray"] == "ok", ready.text
    for study_id in (first, later):
        done = wait_status(api, study_id, ("finished", "failed", "cancelled"))
        assert done["status"] == "finished", (done, api.output()[-3000:])


def test_hprobust_submit_waits_and_prints_the_summary(
    api: ServeProcess, api_token: str, tmp_path
) -> None:
    """``hprobust submit SPEC --url --token --wait``: posts, follows to the end, prints the
    per-arm table; a bad spec prints the field and exits 1."""
    import subprocess

    from tests.service.conftest import HPROBUST

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(name="cli")))
    # stdout is a pipe (`submit --wait | cat`), and no COLUMNS: nothing may wrap at 80
    env = {"PATH": "/usr/bin:/bin", "HPROBUST_API_TOKEN": api_token}
    done = subprocess.run(
        [HPROBUST, "submit", str(spec), "--url", api.url, "--wait", "--poll", "0.5"],
        capture_output=True,
        text=True,
        timeout=STUDY_TIMEOUT_S,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    study_id = done.stdout.split()[1]
    state = study_state(api, study_id)
    assert state["status"] == "finished"
    assert "Robustness per arm" in done.stdout
    lines = done.stdout.splitlines()
    # the links whole, each on its line (the MLflow one is long: it broke mid-word at 80)
    mlflow = state["links"]["mlflow"]
    assert len(mlflow) > 80 and f"  MLflow: {mlflow}" in lines, done.stdout
    assert f"  report: {api.url}/studies/{study_id}/report" in lines
    # the verdict sentence the report and MLflow show, whole on one line
    from study.analysis import present
    from study.cli.tables import as_summary

    s = as_summary(httpx.get(f"{api.url}/studies/{study_id}/summary").json())
    sentence = present.verdict_sentence(s.comparisons[0], s)
    assert len(sentence) > 80 and sentence in lines, done.stdout
    assert sentence.startswith("insgd vs sgd: not enough data for a verdict (1 seed, 2 points")
    assert "sgd" in done.stdout and "lr window" in done.stdout
    assert "warning: only 1 seed: no replicate intervals" in done.stdout  # at submission
    # no bar redrawn in place: one plain line per change of the progress, the last 4/4
    progress = [line for line in lines if line.startswith(f"{study_id} ")]
    assert "\r" not in done.stdout and "\x1b" not in done.stdout
    changes = [
        tuple(p for p in line.split(" · ") if not p.endswith((" in", " left"))) for line in progress
    ]
    assert progress and len(changes) == len(set(changes)), progress
    assert progress[-1].startswith(f"{study_id} 4/4 · "), progress

    spec.write_text(yaml.safe_dump(tiny_spec(epochs=0)))
    bad = subprocess.run(
        [HPROBUST, "submit", str(spec), "--url", api.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert bad.returncode == 1
    assert "epochs: must be >= 1, got 0" in bad.stdout
    denied = subprocess.run(
        [HPROBUST, "submit", str(spec), "--url", api.url, "--token", "wrong-token-123456"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert denied.returncode == 1 and "HTTP 401" in denied.stdout


def test_report_page_in_headless_chromium(
    api: ServeProcess, finished_study: dict[str, Any], tmp_path
) -> None:
    """The report opened in Debian's Chromium: the verdict first, four plots loaded (each a link
    to the full PNG), no console errors, and a screenshot that shows them (not blank; the plot
    area holds coloured pixels)."""
    import numpy as np
    from PIL import Image
    from playwright import sync_api as playwright

    study_id = finished_study["created"]["id"]
    shot = tmp_path / "report.png"
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
            response = page.goto(f"{api.url}/studies/{study_id}/report", wait_until="load")
            assert response is not None and response.status == 200
            widths = page.eval_on_selector_all(
                ".plots img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) == 4 and all(w > 100 for w in widths), widths
            assert page.inner_text("#status") == "finished"
            verdict = page.inner_text("#verdicts")
            assert verdict.startswith("insgd vs sgd: not enough data for a verdict"), verdict
            assert " — AUC " in verdict and " over 1 seed, LR window " in verdict
            # the verdict is the first thing on the page, above the tables
            assert (
                page.locator("#verdicts").bounding_box()["y"]
                < page.locator("#arms").bounding_box()["y"]
            )
            assert page.locator("#arms tr.arm").count() == 2  # sgd + insgd, inits below
            assert page.locator("#arms tr.init").count() >= 2
            links = page.eval_on_selector_all(".plots a", "as => as.map(a => a.href)")
            assert len(links) == 4 and all(h.endswith(".png") for h in links)
            # lr_curves (a panel per init, its legend above them) takes the page's full width
            # and is never shrunk below 90% of its drawn size, so its legend stays readable
            shown = page.eval_on_selector(
                "#plot-lr_curves", "i => [i.getBoundingClientRect().width, i.naturalWidth]"
            )
            full = page.locator(".plots").bounding_box()["width"]
            heatmap = page.locator("#plot-heatmap").bounding_box()["width"]
            assert shown[0] >= 0.9 * min(shown[1], full), (shown, full)
            assert shown[0] > heatmap or shown[0] >= 0.95 * min(shown[1], full)
            assert "lower" in page.inner_text("#legend")
            box = page.locator(".plots").bounding_box()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    image = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert image.std() > 10  # not a blank page
    assert box is not None
    x0, y0 = int(box["x"]), int(box["y"])
    plots = image[y0 : y0 + int(box["height"]), x0 : x0 + int(box["width"])]
    coloured = (plots.max(axis=2) - plots.min(axis=2)) > 60  # saturated pixels: plot marks
    assert coloured.mean() > 0.005, coloured.mean()


def test_openapi_schemathesis(
    api: ServeProcess, api_token: str, finished_study: dict[str, Any], tmp_path
) -> None:
    """schemathesis against /openapi.json (GET routes, POST /studies, /suites and their resume,
    authenticated; a suite's routes answer for unknown ids):
    no 5xx and every response matches its declared schema. ``study_id`` is often the finished
    study, so the 200 responses of every route are checked too, not only 404s."""
    import subprocess
    import sys
    from pathlib import Path

    schemathesis = Path(sys.executable).parent / "schemathesis"
    study_id = finished_study["created"]["id"]
    (tmp_path / "schemathesis.toml").write_text(
        f'[parameters]\nstudy_id = {{ dictionary = "studies", probability = 0.7 }}\n'
        f'[dictionaries.studies]\nvalues = ["{study_id}"]\n'
    )
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--exclude-path-regex",
            "(/cancel|/readyz)$",
            "--max-examples",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--max-time",
            "30",
            "--request-timeout",
            "30",
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {api_token}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    # GET routes + POST /studies, /studies/{id}/resume, /suites and /suites/{id}/resume
    assert "17 selected" in out and "Tested: 17" in out, out[-3000:]
    assert "passed" in out and "failures" not in out


def _offline_browser(p: Any) -> tuple[Any, Any, list[str]]:
    """Chromium whose every request off 127.0.0.1 is aborted and recorded (no outside
    network), with console errors, page errors and failed requests recorded too."""
    from urllib.parse import urlsplit

    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []

    def route(r: Any) -> None:
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            problems.append(f"outside request {r.request.url}")
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
    return browser, page, problems


def test_index_page_lists_studies_with_progress_and_links(
    api: ServeProcess, finished_study: dict[str, Any], baseline_study: dict[str, Any], tmp_path
) -> None:
    """``/`` in Chromium without outside network: every study newest first with its status,
    a full progress bar for a finished one, and links that open its report, its runs in
    MLflow and its trials CSV."""
    from urllib.parse import urljoin

    from playwright import sync_api as playwright

    listed = httpx.get(f"{api.url}/studies").json()["data"]
    with playwright.sync_playwright() as p:
        browser, page, problems = _offline_browser(p)
        try:
            response = page.goto(f"{api.url}/", wait_until="load")
            assert response is not None and response.status == 200
            assert "text/html" in response.headers["content-type"]
            rows = page.locator("#studies tr[id^=study-]")
            assert [r.get_attribute("id") for r in rows.all()] == [
                f"study-{s['id']}" for s in listed
            ]  # newest first, as GET /studies
            study_id = finished_study["created"]["id"]
            row = page.locator(f"#study-{study_id}")
            assert row.locator(".status").inner_text() == "finished"
            assert row.locator(".progress-fill").get_attribute("style") == "width: 100.0%"
            assert row.locator(".progress-text").inner_text() == "4 of 4 finished"
            mlflow = row.locator("a.mlflow").get_attribute("href")
            assert mlflow == finished_study["state"]["links"]["mlflow"]
            assert mlflow.endswith("/runs?workflowType=machine_learning&viewStateShareKey=hprobust")
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
            csv_url = urljoin(page.url, row.locator("a.csv").get_attribute("href"))
            got = page.request.get(csv_url)
            assert got.status == 200 and got.headers["content-type"].startswith("text/csv")
            assert got.text().splitlines()[0].startswith("arm,lr,init")
            row.locator("a.report").click()
            page.wait_for_load_state("load")
            assert page.url == f"{api.url}/studies/{study_id}/report"
            assert page.inner_text("#status") == "finished"
            assert page.locator(".progress-text").inner_text() == "4 of 4 finished"
        finally:
            browser.close()
    assert problems == []


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/docs", ".swagger-ui .opblock-summary-path"), ("/redoc", "h2 >> text=Submit a study")],
)
def test_api_docs_render_with_no_outside_network(
    api: ServeProcess, path: str, ready: str, tmp_path
) -> None:
    """Swagger UI and ReDoc from the installed fastapi-offline assets: both render every
    operation of the OpenAPI schema in Chromium while any outside request is aborted."""
    from playwright import sync_api as playwright

    schema = httpx.get(f"{api.url}/openapi.json").json()
    with playwright.sync_playwright() as p:
        browser, page, problems = _offline_browser(p)
        try:
            response = page.goto(f"{api.url}{path}", wait_until="load")
            assert response is not None and response.status == 200
            page.wait_for_selector(ready, timeout=60_000)
            if path == "/docs":
                shown = {
                    e.inner_text().replace("\u200b", "")
                    for e in page.locator(".opblock-summary-path").all()
                }
                assert shown == set(schema["paths"])
            else:
                for operation in ("Submit a study", "Cancel a study"):
                    assert page.locator(f"text={operation}").count() >= 1
            page.screenshot(path=str(tmp_path / f"{path.strip('/')}.png"))
        finally:
            browser.close()
    assert problems == []
    assert httpx.get(f"{api.url}/assets/docs/../main.py").status_code == 404


def test_hprobust_submit_wait_exits_1_when_the_study_fails(
    api: ServeProcess, api_token: str, tmp_path
) -> None:
    """Trials that crash for real (BatchNorm on a batch of one 1x1 feature map): ``submit
    --wait`` follows the study to its end and exits 1 saying why."""
    import subprocess

    from tests.service.conftest import HPROBUST

    crash = tiny_spec(
        name="crash",
        dataset={"name": "synthetic", "shape": [1, 8, 8], "n_train": 8, "n_val": 4},
        model={"name": "mobilenetv3_small"},
        batch_size=1,
        epochs=1,
        trials_per_arm=1,
    )
    spec = tmp_path / "crash.yaml"
    spec.write_text(yaml.safe_dump(crash))
    env = {"PATH": "/usr/bin:/bin", "HPROBUST_API_TOKEN": api_token, "COLUMNS": "160"}
    done = subprocess.run(
        [HPROBUST, "submit", str(spec), "--url", api.url, "--wait", "--poll", "0.5"],
        capture_output=True,
        text=True,
        timeout=STUDY_TIMEOUT_S,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "every trial failed" in text or "ended failed" in text, text
    assert "Traceback" not in done.stdout + done.stderr


def _cli(*args: str, env: dict[str, str], cwd: Any, timeout: float = 120) -> Any:
    import subprocess

    from tests.service.conftest import HPROBUST

    return subprocess.run(
        [HPROBUST, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


def test_hprobust_client_commands_watch_cancel_resume_and_read_a_study(
    api: ServeProcess, api_token: str, finished_study: dict[str, Any], tmp_path
) -> None:
    """A researcher with ``hprobust`` alone, from a folder with no store: the service is found
    from the URL ``hprobust serve`` recorded (no --url, no HPROBUST_URL); ``studies`` lists
    newest first, ``status`` shows progress then the verdict, ``cancel`` stops the study (its
    in-flight trials show ``stopped``, not ``pending``), ``resume`` finishes it with no stale
    ``last_error``; ``trials`` and ``summary`` read the service; errors exit as the local
    commands' do; ``doctor`` runs its two-trial study through every part. Every stdout is a
    pipe: nothing wrapped."""
    import os

    env = {
        "PATH": "/usr/bin:/bin",
        "HPROBUST_API_TOKEN": api_token,
        "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],  # where this serve recorded its URL
    }
    served = json.loads(
        (Path(os.environ["XDG_STATE_HOME"]) / "hprobust" / "serve.json").read_text()
    )
    assert served["url"] == api.url and served["pid"] == api.proc.pid
    spec = tmp_path / "client.yaml"
    # 6 trials of 30 epochs at batch 16, two at a time: trials are in flight at the cancel
    spec.write_text(
        yaml.safe_dump(tiny_spec(name="client", epochs=30, trials_per_arm=3, batch_size=16))
    )
    sub = _cli("submit", str(spec), env=env, cwd=tmp_path)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    study_id = sub.stdout.split()[1]
    wait_for(
        lambda: study_state(api, study_id)["progress"]["running"] >= 1,
        timeout_s=STUDY_TIMEOUT_S,
        what="a running trial",
        poll_s=0.2,
    )
    listed = _cli("studies", "--format", "json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    ids = [row["id"] for row in json.loads(listed.stdout)]
    assert ids[0] == study_id and finished_study["created"]["id"] in ids  # newest first
    table = _cli("studies", env=env, cwd=tmp_path)
    row = next(line for line in table.stdout.splitlines() if line.startswith(study_id))
    assert "client" in row and "running" in row and "/6" in row, table.stdout

    running = _cli("status", study_id, env=env, cwd=tmp_path)
    assert running.returncode == 0, running.stderr
    assert "status:    running" in running.stdout and "progress:  " in running.stdout
    assert "time left: " in running.stdout and "verdict:" not in running.stdout

    cancelled = _cli("cancel", study_id, env=env, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"study {study_id} cancelled" in cancelled.stdout
    assert f"hprobust resume {study_id}" in cancelled.stdout
    again = _cli("cancel", study_id, env=env, cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and again.stdout == ""
    assert "cancelled" in again.stderr and "Traceback" not in again.stderr
    rows = json.loads(_cli("trials", study_id, "--format", "json", env=env, cwd=tmp_path).stdout)
    statuses = [r["status"] for r in rows]
    assert "stopped" in statuses and "pending" not in statuses, statuses  # MLflow: KILLED
    assert set(statuses) <= {"finished", "stopped"}, statuses

    resumed = _cli("resume", study_id, env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"study {study_id} queued again" in resumed.stdout
    mid = study_state(api, study_id)
    assert mid["last_error"] == "cancelled before it was resumed", mid
    done = wait_status(api, study_id, ("finished", "failed", "cancelled"))
    assert done["status"] == "finished" and done["last_error"] is None, done

    ended = _cli("status", study_id, env=env, cwd=tmp_path)
    assert ended.returncode == 0, ended.stderr
    lines = ended.stdout.splitlines()
    assert "status:    finished" in lines and not any(x.startswith("last error") for x in lines)
    from study.analysis import present
    from study.cli.tables import as_summary

    s = as_summary(httpx.get(f"{api.url}/studies/{study_id}/summary").json())
    assert f"verdict:   {present.verdict_sentence(s.comparisons[0], s)}" in lines, ended.stdout
    assert f"report:    {api.url}/studies/{study_id}/report" in lines
    assert f"MLflow:    {done['links']['mlflow']}" in lines  # whole, past 80 columns

    summary = _cli("summary", study_id, env=env, cwd=tmp_path)  # no store in this folder
    assert summary.returncode == 0, summary.stderr
    assert present.verdict_sentence(s.comparisons[0], s) in summary.stdout.splitlines()
    assert "(status: finished, 6 trials planned)" in summary.stdout
    as_json = _cli("summary", study_id, "--format", "json", env=env, cwd=tmp_path)
    summary_url = f"{api.url}/studies/{study_id}/summary"
    assert json.loads(as_json.stdout) == httpx.get(summary_url).json()
    csv_cli = _cli("trials", study_id, "--format", "csv", env=env, cwd=tmp_path).stdout
    csv_api = httpx.get(f"{api.url}/studies/{study_id}/trials", params={"format": "csv"}).text
    assert csv_cli.splitlines()[0] == csv_api.splitlines()[0]  # one formatter, same columns
    assert sorted(csv_cli.splitlines()) == sorted(csv_api.splitlines())
    report = _cli("report", study_id, env=env, cwd=tmp_path)
    assert report.stdout.strip() == f"{api.url}/studies/{study_id}/report"

    # errors: as the local commands' (2 and one plain line for what the caller can fix)
    unknown = "s20261125-000000-abcdef"
    for command in (
        ["status", unknown],
        ["summary", unknown],
        ["trials", unknown],
        ["resume", unknown],
        ["report", unknown],
    ):
        out = _cli(*command, env=env, cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert out.stderr == f"error: no study with id {unknown!r} at {api.url}\n", out.stderr
    finished = _cli("resume", study_id, env=env, cwd=tmp_path)
    assert finished.returncode == 2 and "is finished" in finished.stderr
    no_token = {k: v for k, v in env.items() if k != "HPROBUST_API_TOKEN"}
    denied = _cli("cancel", study_id, env=no_token, cwd=tmp_path)
    assert denied.returncode == 2 and "HPROBUST_API_TOKEN" in denied.stderr
    gone = _cli("studies", "--url", "http://127.0.0.1:9", env=env, cwd=tmp_path)
    assert gone.returncode == 1 and "cannot reach the service at http://127.0.0.1:9" in (
        gone.stderr
    )
    local = _cli("summary", study_id, "--data-dir", str(tmp_path / "none"), env=env, cwd=tmp_path)
    assert local.returncode == 2 and "no study store in" in local.stderr

    # doctor: a two-trial study through the API, Ray and MLflow, one line per part
    checked = _cli("doctor", env=env, cwd=tmp_path, timeout=STUDY_TIMEOUT_S)
    print(checked.stdout)  # the figures: pytest -rP shows them
    assert checked.returncode == 0, checked.stdout + checked.stderr
    parts = [line.split(":", 1)[0] for line in checked.stdout.splitlines()]
    assert parts == ["API", "Ray", "MLflow", "summary", "all parts work"], checked.stdout
    assert all(" ok (" in line for line in checked.stdout.splitlines()[:4])
    down = _cli("doctor", "--url", "http://127.0.0.1:9", env=env, cwd=tmp_path)
    assert down.returncode == 1 and down.stderr.startswith("error: API failed: cannot reach")
