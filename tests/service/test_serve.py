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

from service.stack import free_port, free_ports, group_alive, load_state, stop_group
from tests.service.conftest import ServeProcess, serve_env, tiny_spec, wait_for

pytestmark = pytest.mark.slow

SPEC = tiny_spec(
    name="restart",
    trials_per_arm=4,
    epochs=100,  # about 8 s a trial: the study outlives a kill -9 and a restart
    resources={"cpus_per_trial": 1, "max_concurrent_trials": 1},
)
TOTAL = 8
#: The dead-head test: half the trials. Its Ray head dies as soon as the first trial has
#: finished (three more to go, about 24 s of them: the study is still running), and the
#: resumed study has three trials to run on the new head, not seven.
HEALS_SPEC = {**SPEC, "name": "ray-heals", "trials_per_arm": 2}
HEALS_TOTAL = 4


def progress(serve: ServeProcess, study_id: str) -> dict:
    r = httpx.get(f"{serve.url}/studies/{study_id}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def trial_runs(data_dir: Path, study_id: str) -> list:
    from study.records.store import StudyStore

    return StudyStore(f"sqlite:///{data_dir / 'mlflow.db'}").trial_runs(study_id)


def test_serve_survives_kill9_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port, mlflow_port, dashboard_port = free_ports(3)
    args = [
        "--data-dir",
        str(data_dir),
        "--mlflow-port",
        str(mlflow_port),
        "--ray-dashboard-port",
        str(dashboard_port),
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


def raylet_pid(pgid: int) -> int | None:
    """The raylet of the Ray head whose process group is ``pgid``."""
    import psutil

    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "raylet" and os.getpgid(proc.pid) == pgid:
                return proc.pid
        except (ProcessLookupError, PermissionError):
            continue
    return None


def test_a_dead_ray_head_is_restarted_and_its_study_resumed_once(tmp_path: Path) -> None:
    """Issue 21, probe Q6: ``kill -9`` of the raylet took the whole embedded Ray head down;
    ``/readyz`` said 503 and the study waited for good (nothing restarted Ray, though the
    MLflow UI was). Now ``hprobust serve`` starts the head again on its port with its token
    (a log line says so); meanwhile ``/readyz`` and the study both say Ray is down; the study
    is resubmitted once on the new head and finishes, each trial key with exactly one run,
    FINISHED (none left RUNNING, none recorded twice)."""
    import signal

    from ray.job_submission import JobSubmissionClient

    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--no-mlflow-ui", "--cpus", "2"]
    args += ["--ray-dashboard-port", str(free_port())]
    serve = ServeProcess(
        args, serve_env(poll_interval_s=0.5, retry_base_s=1), tmp_path / "serve.log", free_port()
    )
    groups: set[int] = set()
    serve.start()
    try:
        (old,) = [c for c in load_state(data_dir) if c.name == "ray"]
        groups.add(old.pid)
        r = httpx.post(f"{serve.url}/studies", json=HEALS_SPEC, timeout=60)
        assert r.status_code == 202, r.text
        study_id = r.json()["id"]
        wait_for(
            lambda: progress(serve, study_id)["progress"]["finished"] >= 1,
            timeout_s=240,
            what="the first finished trial",
        )
        os.kill(raylet_pid(old.pid), signal.SIGKILL)

        down = wait_for(
            lambda: (
                (r := httpx.get(f"{serve.url}/readyz", timeout=30)).status_code == 503 and r.json()
            ),
            timeout_s=60,
            what="/readyz to say Ray is down",
            poll_s=0.3,
        )
        assert down["ray"].startswith(f"down: {old.url} ("), down
        assert "restarted by hprobust serve" in down["ray"], down
        paused = wait_for(
            lambda: (s := progress(serve, study_id))["paused"] and s,
            timeout_s=60,
            what="the study to say it waits for Ray",
            poll_s=0.3,
        )
        assert paused["paused"].startswith("ray unreachable"), paused
        assert paused["status"] == "running" and paused["error"] is None

        wait_for(
            lambda: httpx.get(f"{serve.url}/readyz", timeout=30).status_code == 200,
            timeout_s=240,
            what="the Ray head to be restarted",
        )
        new = wait_for(
            lambda: (
                next(c for c in load_state(data_dir) if c.name == "ray").pid != old.pid
                and next(c for c in load_state(data_dir) if c.name == "ray")
            ),
            timeout_s=60,
            what="stack.json to name the new head",
        )
        groups.add(new.pid)
        assert new.url == old.url and new.extra["token"] == old.extra["token"]
        assert f"restarted the ray at {old.url}" in serve.output()
        assert not Path(old.extra["temp_dir"]).exists()

        state = wait_for(
            lambda: (s := progress(serve, study_id))["status"] in ("finished", "failed") and s,
            timeout_s=400,
            what="the resumed study to end",
        )
        assert state["status"] == "finished", serve.output()[-4000:]
        assert state["progress"]["finished"] == HEALS_TOTAL and state["paused"] is None
        runs = trial_runs(data_dir, study_id)
        keys = sorted(run.data.tags["hprobust.trial_key"] for run in runs)
        assert len(keys) == HEALS_TOTAL and len(set(keys)) == HEALS_TOTAL, keys
        assert {run.info.status for run in runs} == {"FINISHED"}
        # resumed exactly once: one job on the new head, one resubmission in the log
        client = JobSubmissionClient(
            new.url, headers={"Authorization": f"Bearer {new.extra['token']}"}
        )
        # the study's own jobs (a warm driver for the next study may wait there too)
        jobs = [
            j for j in client.list_jobs() if (j.metadata or {}).get("hprobust.study_id") == study_id
        ]
        assert [j.submission_id for j in jobs] == [f"{study_id}-r1"]
        assert serve.output().count(f"study {study_id}: resubmitting with --resume") == 1
        assert serve.terminate() == 0
        for pgid in groups:
            wait_for(lambda g=pgid: not group_alive(g), timeout_s=60, what=f"group {pgid} gone")
    finally:
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
