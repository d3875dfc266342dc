"""``hprobust serve`` as one command: it starts the Ray head, the MLflow UI and the API, prints
their URLs, survives ``kill -9`` (the next start adopts the head and follows the running job),
stops everything it started on SIGTERM (re-queueing the running study), and resumes that study
on the next start, every trial recorded exactly once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from service.stack import free_port, group_alive, load_state, stop_group
from tests.service.conftest import ServeProcess, serve_env, tiny_spec, wait_for

pytestmark = pytest.mark.slow

SPEC = tiny_spec(
    name="restart",
    trials_per_arm=4,
    epochs=100,  # about 8 s a trial: the study outlives a kill -9 and a restart
    resources={"cpus_per_trial": 1, "max_concurrent_trials": 1},
)
TOTAL = 8


def progress(serve: ServeProcess, study_id: str) -> dict:
    r = httpx.get(f"{serve.url}/studies/{study_id}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def trial_runs(data_dir: Path, study_id: str) -> list:
    from study.records.store import StudyStore

    return StudyStore(f"sqlite:///{data_dir / 'mlflow.db'}").trial_runs(study_id)


def test_serve_survives_kill9_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port, mlflow_port = free_port(), free_port()
    args = [
        "--data-dir",
        str(data_dir),
        "--mlflow-port",
        str(mlflow_port),
        "--ray-dashboard-port",
        str(free_port()),
        "--cpus",
        "2",
    ]
    env = serve_env(poll_interval_s=0.5)
    started: list[ServeProcess] = []
    groups: set[int] = set()

    def start(name: str) -> ServeProcess:
        serve = ServeProcess(args, env, tmp_path / f"{name}.log", port).start()
        started.append(serve)
        groups.update(child.pid for child in load_state(data_dir))
        return serve

    try:
        first = start("first")
        out = first.output()
        assert f"API:            http://127.0.0.1:{port}" in out
        assert "Ray dashboard:  http://127.0.0.1:" in out
        assert f"MLflow UI:      http://127.0.0.1:{mlflow_port}" in out
        assert "curl -sS -X POST" in out and "examples/digits-quick.yaml" in out
        assert httpx.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=10).status_code == 200
        ready = httpx.get(f"{first.url}/readyz", timeout=30).json()
        assert ready == {
            "status": "ready",
            "ray": "ok",
            "mlflow": "ok",
            "disk": "ok",
            "mlflow_ui": "ok",  # the UI this serve started
        }

        r = httpx.post(f"{first.url}/studies", json=SPEC, timeout=60)
        assert r.status_code == 202, r.text
        study_id = r.json()["id"]
        assert r.json()["links"]["mlflow"].startswith(f"http://127.0.0.1:{mlflow_port}/#/")
        wait_for(
            lambda: progress(first, study_id)["progress"]["finished"] >= 1,
            timeout_s=180,
            what="the first finished trial",
        )

        # kill -9: the Ray head and MLflow UI live on, and so does the study's job
        children = {c.name: c for c in load_state(data_dir)}
        first.kill9()
        assert children["ray"].alive() and children["mlflow"].alive()

        second = start("second")
        assert f"adopted the Ray head of a previous run (pid {children['ray'].pid})" in (
            second.output()
        )
        state = progress(second, study_id)
        assert state["status"] == "running", state
        done = state["progress"]["finished"]
        state = wait_for(
            lambda: (
                (s := progress(second, study_id))["job"] == study_id
                and s["progress"]["finished"] > done
                and s
            ),
            timeout_s=180,
            what="the followed job to finish another trial",
        )
        assert state["status"] == "running", "the study ended too soon to test a re-queue"

        # SIGTERM: everything stops; the running study is stopped and re-queued
        assert second.terminate() == 0
        for pgid in groups:
            wait_for(lambda g=pgid: not group_alive(g), timeout_s=60, what=f"group {pgid} gone")
        assert not (data_dir / "stack.json").exists()
        assert not Path(children["ray"].extra["temp_dir"]).exists()
        assert "re-queued 1 study(ies)" in second.output()

        # a fresh head: the job is gone, the study resumes from its checkpoint and ends
        third = start("third")
        assert progress(third, study_id)["status"] in ("queued", "running")
        state = wait_for(
            lambda: (s := progress(third, study_id))["status"] in ("finished", "failed") and s,
            timeout_s=240,
            what="the resumed study to end",
        )
        assert state["status"] == "finished", third.output()[-4000:]
        assert state["progress"]["finished"] == TOTAL
        runs = trial_runs(data_dir, study_id)
        keys = [run.data.tags["hprobust.trial_key"] for run in runs]
        assert len(keys) == TOTAL and len(set(keys)) == TOTAL, sorted(keys)
        summary = httpx.get(f"{third.url}/studies/{study_id}/summary", timeout=30).json()
        assert summary["partial"] is False and summary["settings"]["n_used"] == TOTAL
        assert third.terminate() == 0
        for pgid in groups:
            wait_for(lambda g=pgid: not group_alive(g), timeout_s=60, what=f"group {pgid} gone")
    finally:
        for serve in started:
            serve.cleanup()
        for pgid in groups:
            if group_alive(pgid):
                stop_group(pgid, grace_s=5)


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPROBUST_")}
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)], env=env
    )
    assert result.exit_code == 2
    assert "host must be a loopback address unless HPROBUST_API_TOKEN is set" in result.output
    assert "'0.0.0.0'" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_stack_json_holds_the_ray_token_privately(tmp_path: Path) -> None:
    from service.stack import Child, save_state

    save_state(tmp_path, [Child("ray", os.getpgid(0), "http://x", "log", {"token": "t"})])
    path = tmp_path / "stack.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())[0]["extra"]["token"] == "t"
    assert load_state(tmp_path)[0].alive()
