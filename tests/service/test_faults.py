"""Faults that heal (docs/design.md#reliability-rules): a study whose data dir fills up mid-study
pauses (never ``failed``), ``/readyz`` says the disk is full, and once space is freed the
study resumes and finishes with every trial recorded exactly once and no trial run left
RUNNING. A real ``hprobust serve`` on a real Ray head, its data dir (MLflow SQLite store,
artifacts, Ray Tune storage) on a small tmpfs that the test fills with a file."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.stack import Child, free_port
from tests.service.conftest import ServeProcess, serve_env, tiny_spec, wait_for

pytestmark = pytest.mark.slow

SPEC = tiny_spec(
    name="disk-full",
    trials_per_arm=3,
    epochs=40,  # a few seconds a trial: the disk fills while the study runs
    resources={"cpus_per_trial": 1, "max_concurrent_trials": 1},
)
TOTAL = 6  # 2 arms x 3 points x 1 seed
MIN_FREE_MB = 8


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs mounted at ``tmp_path/data`` (root only), unmounted at the end."""
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write one file until the disk is full; returns it."""
    path = directory / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), open(path, "ab", buffering=0) as out:
        while True:  # the last partial MB, too
            out.write(b"\0" * 4096)
    return path


def study(serve: ServeProcess, study_id: str) -> dict[str, Any]:
    r = httpx.get(f"{serve.url}/studies/{study_id}", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_full_disk_pauses_the_study_which_resumes_when_space_is_freed(
    ray_head: Child, tmpfs: Path, tmp_path: Path, api_token: str
) -> None:
    env = serve_env(
        ray_address=ray_head.url,
        ray_auth_token=ray_head.extra["token"],
        api_token=api_token,
        poll_interval_s=0.5,
        retry_base_s=1,
        retry_max_s=4,
        min_free_mb=MIN_FREE_MB,
    )
    serve = ServeProcess(
        ["--data-dir", str(tmpfs), "--no-mlflow-ui"], env, tmp_path / "serve.log", free_port()
    )
    seen: list[dict[str, Any]] = []

    def watch(study_id: str) -> dict[str, Any]:
        state = study(serve, study_id)
        seen.append(state)
        assert state["status"] != "failed", (state, serve.output()[-4000:])
        return state

    serve.start()
    try:
        r = httpx.post(
            f"{serve.url}/studies",
            json=SPEC,
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        study_id = r.json()["id"]
        wait_for(
            lambda: watch(study_id)["progress"]["finished"] >= 1,
            timeout_s=300,
            what="the first finished trial",
        )

        filler = fill(tmpfs)
        ready = wait_for(
            lambda: (r := httpx.get(f"{serve.url}/readyz", timeout=60)).status_code == 503 and r,
            timeout_s=60,
            what="/readyz to report the full disk",
        )
        assert ready.json()["disk"].startswith(f"full: {tmpfs} has"), ready.json()
        assert ready.json()["ray"] == "ok" and ready.json()["mlflow"] == "ok"
        paused = wait_for(
            lambda: (s := watch(study_id))["paused"] and s,
            timeout_s=60,
            what="the study to say it is paused",
        )
        assert paused["paused"].startswith("disk full: "), paused
        # the driver runs into the full disk and stops; the study waits, not failed
        stopped = wait_for(
            lambda: (s := watch(study_id))["retry_at"] and s,
            timeout_s=300,
            what="the driver to stop on the full disk and a retry to be planned",
        )
        assert stopped["status"] in ("queued", "running") and stopped["paused"], stopped
        job = stopped["job"]
        for _ in range(5):  # it stays paused: nothing resubmitted while the disk is full
            state = watch(study_id)
            assert state["job"] == job and state["paused"], state

        filler.unlink()
        wait_for(
            lambda: httpx.get(f"{serve.url}/readyz", timeout=60).status_code == 200,
            timeout_s=60,
            what="/readyz to be ready again",
        )
        state = wait_for(
            lambda: (s := watch(study_id))["status"] == "finished" and s,
            timeout_s=600,
            what="the resumed study to finish",
        )
        assert state["job"] != job and state["paused"] is None and state["retry_at"] is None
        # what it recovered from was shown while it ran; finished, it shows no stale error
        assert state["last_error"] is None, state
        assert state["progress"]["finished"] == TOTAL and state["progress"]["running"] == 0

        from study.records.store import StudyStore

        runs = StudyStore(f"sqlite:///{tmpfs / 'mlflow.db'}").trial_runs(study_id)
        keys = sorted(run.data.tags["hprobust.trial_key"] for run in runs)
        assert len(keys) == TOTAL and len(set(keys)) == TOTAL, keys
        assert {run.info.status for run in runs} == {"FINISHED"}
        assert not any(s["status"] == "failed" for s in seen)
    finally:
        try:
            serve.terminate()
        finally:
            serve.cleanup()


def driver_pids(study_id: str) -> list[int]:
    """Processes running the study driver of ``study_id`` (not its shell wrapper)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "study.driver" in cmd and study_id in cmd and not cmd[0].endswith("sh"):
            found.append(proc.info["pid"])
    return found


def test_resume_of_a_failed_study_keeps_its_recorded_trials(
    ray_head: Child, tmp_path: Path, api_token: str
) -> None:
    import os
    import signal

    from study.records.store import StudyStore

    env = serve_env(
        ray_address=ray_head.url,
        ray_auth_token=ray_head.extra["token"],
        api_token=api_token,
        poll_interval_s=0.5,
        max_attempts=0,  # a driver that dies fails its study at once
    )
    data_dir = tmp_path / "data"
    serve = ServeProcess(
        ["--data-dir", str(data_dir), "--no-mlflow-ui"], env, tmp_path / "serve.log", free_port()
    )
    auth = {"Authorization": f"Bearer {api_token}"}
    serve.start()
    try:
        r = httpx.post(f"{serve.url}/studies", json=SPEC, headers=auth, timeout=60)
        assert r.status_code == 202, r.text
        study_id = r.json()["id"]
        assert r.json()["links"]["resume"] == f"/studies/{study_id}/resume"
        r = httpx.post(f"{serve.url}/studies/{study_id}/resume", headers=auth, timeout=60)
        assert r.status_code == 409 and "only a failed or cancelled" in r.text, r.text
        wait_for(
            lambda: study(serve, study_id)["progress"]["finished"] >= 1,
            timeout_s=300,
            what="the first finished trial",
        )
        # the driver dies (kill -9): no outcome recorded, the study is failed (max_attempts 0)
        pids = wait_for(lambda: driver_pids(study_id), timeout_s=60, what="the driver process")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        failed = wait_for(
            lambda: (s := study(serve, study_id))["status"] in ("failed", "finished") and s,
            timeout_s=120,
            what="the study to fail",
        )
        assert failed["status"] == "failed", failed
        assert "ended without an outcome 1 times" in failed["error"], failed
        store = StudyStore(f"sqlite:///{data_dir / 'mlflow.db'}")
        before = {
            run.data.tags["hprobust.trial_key"]: run.info.run_id
            for run in store.trial_runs(study_id)
            if run.info.status == "FINISHED"
        }
        assert before, "no trial finished before the driver died"

        unknown = "s20261125-031500-a1b2c3"
        assert httpx.post(f"{serve.url}/studies/{unknown}/resume", headers=auth).status_code == 404
        r = httpx.post(f"{serve.url}/studies/{study_id}/resume", timeout=60)
        assert r.status_code == 401, r.text  # writes need the token
        assert study(serve, study_id)["status"] == "failed"

        r = httpx.post(f"{serve.url}/studies/{study_id}/resume", headers=auth, timeout=60)
        assert r.status_code == 202, r.text
        resumed = r.json()
        assert resumed["status"] == "queued" and resumed["error"] is None
        assert resumed["finished_at"] is None
        assert resumed["last_error"] == failed["error"]
        r = httpx.post(f"{serve.url}/studies/{study_id}/resume", headers=auth, timeout=60)
        assert r.status_code == 409, r.text  # live again: not twice

        state = wait_for(
            lambda: (s := study(serve, study_id))["status"] in ("finished", "failed") and s,
            timeout_s=600,
            what="the resumed study to end",
        )
        assert state["status"] == "finished", (state, serve.output()[-4000:])
        assert state["progress"]["finished"] == TOTAL and state["progress"]["running"] == 0
        runs = store.trial_runs(study_id)
        keys = sorted(run.data.tags["hprobust.trial_key"] for run in runs)
        assert len(keys) == TOTAL and len(set(keys)) == TOTAL, keys
        assert {run.info.status for run in runs} == {"FINISHED"}
        after = {run.data.tags["hprobust.trial_key"]: run.info.run_id for run in runs}
        assert {key: after[key] for key in before} == before  # recorded trials were not rerun
        r = httpx.post(f"{serve.url}/studies/{study_id}/resume", headers=auth, timeout=60)
        assert r.status_code == 409 and "is finished" in r.text, r.text
    finally:
        try:
            serve.terminate()
        finally:
            serve.cleanup()
