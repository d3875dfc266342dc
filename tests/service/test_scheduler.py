"""The scheduler's retry policy: a study whose driver dies is resubmitted with exponential
backoff (``retry_delay``), its ``retry_at`` and ``last_error`` recorded, and marked failed only
when its lost jobs use up ``max_attempts``. Decisions are driven by an injected clock against
a real Ray head (drivers that exit 1 at once) and a real MLflow store: nothing here sleeps
and then asserts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from service.jobs import JobRef, StudyJobs
from service.scheduler import Scheduler, iso, job_error, lost_to_a_fault, retry_delay
from service.stack import Child
from study.faults import EXIT_TRANSIENT
from tests.service.conftest import tiny_spec, wait_for


def failing_jobs(ray_head: Child, store: Any, tmp_path: Path) -> StudyJobs:
    """The test Ray head's jobs API, whose every driver exits 1 at once (``false -m
    study.driver ...``): a submitted job is a lost job."""
    return StudyJobs(
        ray_head.url,
        token=ray_head.extra["token"],
        tracking_uri=store.tracking_uri,
        storage=tmp_path / "ray_results",
        data_dir=tmp_path / "datasets",
        python="false",
    )


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 10, 300) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(1, 0.5, 1) == 0.5 and retry_delay(3, 0.5, 1) == 1
    assert retry_delay(0, 10, 300) == 0  # the first job is not a retry
    assert retry_delay(10_000, 1, 60) == 60  # no overflow for a study retried for days


def test_a_job_lost_to_a_fault_that_heals_is_told_apart() -> None:
    ended = JobRef("s-r1", "s", 1, "FAILED", "exit code 1", start_time=100.0, end_time=160.0)
    assert not lost_to_a_fault(ended, None)
    assert not lost_to_a_fault(ended, 99.0)  # the fault cleared before the job started
    assert lost_to_a_fault(ended, 130.0)  # a dependency was down while it ran
    said = JobRef("s-r1", "s", 1, "FAILED", f"failed with exit code {EXIT_TRANSIENT}, logs")
    assert lost_to_a_fault(said, None)  # the driver said so


def test_a_lost_job_is_told_by_its_first_clause_and_the_drivers_last_word() -> None:
    message = (
        "Job entrypoint command failed with exit code 75, last available logs (truncated to "
        "20,000 chars):\nTraceback ...\n  File x\nstudy s1 paused: disk full: OSError: [Errno 28]\n"
    )
    assert job_error(message) == (
        "Job entrypoint command failed with exit code 75: study s1 paused: disk full: OSError: "
        "[Errno 28]"
    )
    assert job_error("Job was stopped.") == "Job was stopped."
    assert job_error(None) == "no message"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.slow
def test_lost_jobs_are_resubmitted_with_backoff_then_the_study_fails(
    ray_head: Child, tmp_path: Path
) -> None:
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    study_id = store.create_study(parse_spec(tiny_spec())).id
    jobs = failing_jobs(ray_head, store, tmp_path)
    clock = Clock()
    scheduler = Scheduler(store, jobs, max_attempts=2, retry_base_s=10, retry_max_s=15, clock=clock)

    def ended(attempt: int) -> JobRef:
        ref = wait_for(
            lambda: (r := jobs.find(study_id)) and r.attempt == attempt and r.terminal and r,
            timeout_s=180,
            what=f"job attempt {attempt} to end",
        )
        assert ref.status == "FAILED" and ref.end_time is not None, ref
        return ref

    scheduler.reconcile()  # the first job
    first = ended(0)
    clock.now = max(clock.now, first.end_time)
    scheduler.reconcile()  # its loss is seen: the first retry waits retry_base_s
    retry = scheduler.retry_of(study_id)
    assert retry is not None and (retry.attempt, retry.failures) == (1, 1)
    assert retry.at == first.end_time + 10
    assert "exit code 1" in retry.error
    record = store.get(study_id)
    assert record.status == "queued"
    assert record.retry_at == iso(first.end_time + 10) and record.last_error == retry.error

    clock.now = first.end_time + 9.9
    scheduler.reconcile()
    assert jobs.find(study_id).attempt == 0  # not due yet: nothing submitted

    clock.now = first.end_time + 10
    scheduler.reconcile()  # due: resubmitted with --resume, retry_at cleared
    assert scheduler.retry_of(study_id) is None and store.get(study_id).retry_at is None
    second = ended(1)
    assert second.submission_id == f"{study_id}-r1" and second.failures == 1

    clock.now = max(clock.now, second.end_time)
    scheduler.reconcile()  # the second retry waits twice as long, capped at retry_max_s
    retry = scheduler.retry_of(study_id)
    assert (retry.attempt, retry.failures, retry.at) == (2, 2, second.end_time + 15)
    clock.now = retry.at - 0.1
    scheduler.reconcile()
    assert jobs.find(study_id).attempt == 1
    clock.now = retry.at
    scheduler.reconcile()
    third = ended(2)

    clock.now = max(clock.now, third.end_time)
    scheduler.reconcile()  # a third lost job is one more than max_attempts allows: failed
    record = store.get(study_id)
    assert record.status == "failed"
    assert "ended without an outcome 3 times (HPROBUST_MAX_ATTEMPTS=2)" in record.error
    assert record.retry_at is None and scheduler.retry_of(study_id) is None
    scheduler.reconcile()
    assert jobs.find(study_id).attempt == 2  # a failed study is not resubmitted


@pytest.mark.slow
def test_while_a_dependency_is_down_nothing_is_submitted_failed_or_counted(
    ray_head: Child, tmp_path: Path
) -> None:
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    study_id = store.create_study(parse_spec(tiny_spec())).id
    jobs = failing_jobs(ray_head, store, tmp_path)
    clock, down = Clock(), {"disk": "full: /data has 1.0 MB free, needs 100 MB"}
    scheduler = Scheduler(  # max_attempts 0: one counted loss would fail the study
        store,
        jobs,
        max_attempts=0,
        retry_base_s=10,
        retry_max_s=10,
        clock=clock,
        check=lambda: dict(down),
    )
    scheduler.reconcile()
    assert jobs.find(study_id) is None  # paused: a queued study is not submitted

    down.clear()
    scheduler.reconcile()
    first = wait_for(
        lambda: (r := jobs.find(study_id)) and r.terminal and r, timeout_s=180, what="the job"
    )
    down["disk"] = "full: /data has 0.0 MB free, needs 100 MB"
    clock.now = max(clock.now, first.end_time)
    scheduler.reconcile()  # lost while the disk is full: a fault that heals, not counted
    retry = scheduler.retry_of(study_id)
    assert retry is not None and retry.transient and retry.failures == 0
    assert store.get(study_id).status == "queued"
    clock.now = retry.at + 60
    scheduler.reconcile()
    assert jobs.find(study_id).attempt == 0  # due, but nothing is resubmitted while it is down

    down.clear()  # the fault clears: resubmitted, with its count still 0
    scheduler.reconcile()
    second = jobs.find(study_id)
    assert (second.attempt, second.failures) == (1, 0)
    assert store.get(study_id).status == "queued"


@pytest.mark.slow
def test_a_pass_reads_only_the_live_studies_and_no_spec(ray_head: Child, tmp_path: Path) -> None:
    """Issue 14: every pass listed every study and parsed its spec (a download for a long
    one). Now MLflow filters on the status tag: a pass reads the live studies' experiments
    only, and no spec (each study's signature is checked once, at its first pass)."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec
    from tests.study.counting_client import CountingClient
    from tests.study.records.test_records import LONG_SPEC

    store = StudyStore(sqlite_uri(tmp_path))
    for status in ("finished", "failed", "cancelled"):
        store.set_status(store.create_study(parse_spec(LONG_SPEC)).id, status)
    queued = store.create_study(parse_spec(LONG_SPEC)).id
    jobs = failing_jobs(ray_head, store, tmp_path)
    down = {"disk": "full: nothing is submitted in this test"}
    scheduler = Scheduler(store, jobs, check=lambda: dict(down))
    store.client = counting = CountingClient(store.client)
    scheduler.reconcile()  # the first pass checks the queued study's signature: its spec
    assert counting.calls["download_artifacts"] == 1
    counting.reset()
    for _ in range(3):
        scheduler.reconcile()
    assert jobs.find(queued) is None  # paused: nothing was submitted
    # per pass: two searches per live status (the status tag, the status seal: issue 21, Q3)
    # and two reads of the live study (its sealed status checked, then its state)
    assert counting.calls == {"search_experiments": 12, "get_experiment": 6}, counting.calls
    assert set(counting.experiments) == {f"{LONG_SPEC['name']} · {queued}"}


# ---- issue 21, B2: no study can block another --------------------------------------------


def driver_jobs(ray_head: Child, store: Any, tmp_path: Path, **env: str) -> StudyJobs:
    """The test Ray head's jobs API running the real study driver (``env``: the drivers'
    environment)."""
    return StudyJobs(
        ray_head.url,
        token=ray_head.extra["token"],
        tracking_uri=store.tracking_uri,
        storage=tmp_path / "ray_results",
        data_dir=tmp_path / "datasets",
        env=env or None,
    )


def ended(store: Any, study_id: str, timeout_s: float = 300) -> Any:
    return wait_for(
        lambda: (r := store.get(study_id)).status in ("finished", "failed", "cancelled") and r,
        timeout_s=timeout_s,
        what=f"study {study_id} to end",
    )


def run_until_ended(scheduler: Scheduler, store: Any, ids: list[str]) -> dict[str, Any]:
    """Run the scheduler's loop (its thread) until every study of ``ids`` has ended."""
    scheduler.poll_interval_s = 0.5
    scheduler.start()
    try:
        return {study_id: ended(store, study_id, timeout_s=400) for study_id in ids}
    finally:
        scheduler.stop()


@pytest.mark.slow
def test_a_study_cancelled_in_its_first_second_then_resumed_runs_and_blocks_nothing(
    ray_head: Child, tmp_path: Path
) -> None:
    """Issue 21, probe B2 (cancel, then resume): a study cancelled before its driver started
    was resubmitted under the submission id of its cancelled job; Ray refused ("submission_id
    ... already exists") at every pass, the study showed ``paused: ray unreachable`` while
    Ray answered, and every later study stayed queued. Now the resumed study's job is numbered
    after the cancelled one, and both studies run to the end."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    jobs = driver_jobs(ray_head, store, tmp_path)
    scheduler = Scheduler(store, jobs, max_concurrent=1)
    first = store.create_study(parse_spec(tiny_spec(name="cancelled-early"))).id
    scheduler.reconcile()  # submitted; cancelled at once, before its driver starts the study
    assert scheduler.job_of(first).submission_id == first
    scheduler.cancel(first)
    assert store.get(first).status == "cancelled" and store.get(first).started_at is None

    scheduler.resume(first)
    later = store.create_study(parse_spec(tiny_spec(name="later"))).id
    scheduler.reconcile()  # was: RayUnavailableError, "... already exists", every 2 s
    job = scheduler.job_of(first)
    assert job is not None and (job.submission_id, job.attempt) == (f"{first}-r1", 1)
    assert scheduler.paused() is None and scheduler.retry_of(first) is None
    jobs.ping()  # Ray answers (what /readyz asks): the study and /readyz agree

    outcome = run_until_ended(scheduler, store, [first, later])
    assert {k: r.status for k, r in outcome.items()} == {first: "finished", later: "finished"}


@pytest.mark.slow
def test_a_study_that_failed_for_a_missing_secret_runs_once_resumed(
    ray_head: Child, tmp_path: Path, signing_secret: str
) -> None:
    """Issue 21, probe B2 (resume after a failure): a study whose driver refused to run it
    (the secret file it was given was missing) failed before it started; resumed, it was
    resubmitted under its first job's submission id, which Ray refused for good. Now it is
    numbered after that job, runs and finishes."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    secret_file = tmp_path / "secret"  # missing for now
    store = StudyStore(sqlite_uri(tmp_path))
    jobs = driver_jobs(ray_head, store, tmp_path, HPROBUST_SECRET_FILE=str(secret_file))
    # max_attempts=0: the first job lost fails the study (its driver, with no secret, cannot
    # seal a status of its own: the scheduler's next pass records the refusal)
    scheduler = Scheduler(store, jobs, max_concurrent=1, max_attempts=0)
    study_id = store.create_study(parse_spec(tiny_spec(name="no-secret"))).id
    failed = wait_for(
        lambda: (
            (scheduler.reconcile(), store.get(study_id))[1].status == "failed"
            and store.get(study_id)
        ),
        timeout_s=300,
        what=f"study {study_id} to fail",
    )
    assert failed.status == "failed" and "no signing secret" in failed.error, failed
    assert failed.started_at is None

    secret_file.write_text(signing_secret)  # the secret is back
    scheduler.resume(study_id)
    scheduler.reconcile()  # was: RayUnavailableError, "... already exists"
    assert scheduler.job_of(study_id).submission_id == f"{study_id}-r1"
    outcome = run_until_ended(scheduler, store, [study_id])
    assert outcome[study_id].status == "finished", outcome[study_id]


@pytest.mark.slow
def test_a_study_ray_refuses_holds_up_no_other_and_fails_after_bounded_tries(
    ray_head: Child, tmp_path: Path
) -> None:
    """Issue 21, probe B2 (a stuck study blocks every other): a submission that Ray refuses
    stopped the whole pass, so the studies after it stayed queued for good. Now the refused
    study keeps no slot (the next study is submitted in the same pass, and runs to the end),
    waits for its next try with its reason shown (not ``ray unreachable``: Ray answers), and
    is failed with Ray's answer after HPROBUST_SUBMIT_TRIES refusals. The refusal is real:
    a job that is not the study's holds its submission id on the cluster."""
    from ray.job_submission import JobSubmissionClient

    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    stuck = store.create_study(parse_spec(tiny_spec(name="stuck"))).id
    later = store.create_study(parse_spec(tiny_spec(name="later"))).id
    client = JobSubmissionClient(
        ray_head.url, headers={"Authorization": f"Bearer {ray_head.extra['token']}"}
    )
    client.submit_job(entrypoint="true", submission_id=stuck)  # someone else's job
    jobs = driver_jobs(ray_head, store, tmp_path)
    clock = Clock()
    scheduler = Scheduler(
        store, jobs, max_concurrent=1, submit_tries=3, retry_base_s=10, retry_max_s=15, clock=clock
    )
    scheduler.reconcile()
    assert scheduler.job_of(later) is not None  # the later study took the slot at once
    assert scheduler.job_of(stuck) is None and scheduler.paused() is None
    refusal = scheduler.retry_of(stuck)
    assert refusal is not None and refusal.at == clock.now + 10
    assert "Ray refused to start its job (try 1 of 3" in refusal.error
    assert f"submission_id {stuck} already exists" in refusal.error
    record = store.get(stuck)
    assert record.status == "queued" and record.last_error == refusal.error
    assert record.retry_at == iso(clock.now + 10)
    jobs.ping()  # Ray answers: /readyz says ready, and the study says why it waits
    scheduler.reconcile()  # not due yet: not tried again
    assert scheduler.retry_of(stuck).error == refusal.error

    # the later study runs to the end; then the refused one gets the slot for its tries
    assert ended(store, later, timeout_s=400).status == "finished"
    clock.now = refusal.at
    scheduler.reconcile()
    second = scheduler.retry_of(stuck)
    assert "try 2 of 3" in second.error and second.at == clock.now + 15
    clock.now = second.at
    scheduler.reconcile()  # the third refusal: failed, with Ray's answer
    record = store.get(stuck)
    assert record.status == "failed", record
    assert record.error.startswith("Ray refused to start its job 3 times (HPROBUST_SUBMIT_TRIES=3)")
    assert "already exists" in record.error and record.retry_at is None
    assert scheduler.retry_of(stuck) is None


# ---- issue 21, item 7: a janitor for stuck creations, a give-up for faults that never clear


def unreachable_jobs(store: Any, tmp_path: Path) -> StudyJobs:
    """A Ray Jobs client of a cluster that is not there (nothing listens on its port)."""
    from service.stack import free_port

    return StudyJobs(
        f"http://127.0.0.1:{free_port()}",
        tracking_uri=store.tracking_uri,
        storage=tmp_path / "ray_results",
        data_dir=tmp_path / "datasets",
    )


def test_a_study_stuck_in_creating_is_rolled_back_after_the_grace_period(tmp_path: Path) -> None:
    """Issue 21, item 7 (a study whose roll-back fails stays ``creating`` for good): the
    record a creation leaves when its process dies after its first write (or its roll-back
    fails) was never listed, run or removed, and held its Idempotency-Key. Now the
    scheduler's first pass after HPROBUST_CREATING_GRACE_S rolls it back: tagged ``failed``
    with the reason, its key released, its experiment deleted; a younger one is left alone."""
    from mlflow.entities import ViewType

    from study.records.ids import new_study_id
    from study.records.layout import experiment_name
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    stuck = new_study_id()
    experiment_id = store.client.create_experiment(  # what create_study writes first
        experiment_name(stuck),
        tags={
            "hprobust.study_id": stuck,
            "hprobust.name": "half-made",
            "hprobust.status": "creating",
            "hprobust.idempotency": "key-of-a-failed-post",
        },
    )
    clock = Clock()
    scheduler = Scheduler(
        store, unreachable_jobs(store, tmp_path), creating_grace_s=600, clock=clock
    )
    clock.now = time.time() + 590
    scheduler.reconcile()  # within the grace period: a creation may still be under way
    kept = store.client.get_experiment(experiment_id)
    assert kept.lifecycle_stage == "active" and kept.tags["hprobust.status"] == "creating"

    clock.now = time.time() + 660  # the next sweep (one a minute), past the grace period
    scheduler.reconcile()
    gone = store.client.get_experiment(experiment_id)
    assert gone.lifecycle_stage == "deleted"
    assert gone.tags["hprobust.status"] == "failed"
    assert gone.tags["hprobust.error"].startswith("its creation did not complete (still creating")
    assert "HPROBUST_CREATING_GRACE_S=600" in gone.tags["hprobust.error"]
    assert "hprobust.idempotency" not in gone.tags
    assert store.states() == []  # listed nowhere
    # the key is free again: a retry of the failed request records a study
    created = store.create_study(parse_spec(tiny_spec()), idempotency_key="key-of-a-failed-post")
    assert created.id != stuck and store.get(created.id).status == "queued"
    deleted = store.client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [experiment_id]


def test_a_study_paused_for_a_fault_that_never_clears_is_given_up(tmp_path: Path) -> None:
    """Issue 21, item 7 (a fault that never clears waits forever): a study paused because Ray
    cannot be reached waited for good. Now it is failed after HPROBUST_FAULT_GIVE_UP_S of
    pause without a break, with ``gave up after <time> paused ...: <the fault>``. The fault
    is real: nothing listens where the Ray Jobs API should be."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    study_id = store.create_study(parse_spec(tiny_spec())).id
    clock = Clock()
    scheduler = Scheduler(
        store, unreachable_jobs(store, tmp_path), fault_give_up_s=3600, clock=clock
    )
    start = clock.now
    scheduler.step()
    assert scheduler.paused().startswith("ray unreachable: RayUnavailableError")
    assert store.get(study_id).status == "queued"
    clock.now = start + 3599
    scheduler.step()
    assert store.get(study_id).status == "queued"
    clock.now = start + 3600
    scheduler.step()
    record = store.get(study_id)
    assert record.status == "failed", record
    assert record.error.startswith(
        "gave up after 60 min paused (HPROBUST_FAULT_GIVE_UP_S=3600): ray unreachable: "
    ), record.error
    assert record.finished_at is not None


@pytest.mark.slow
def test_a_study_whose_jobs_keep_dying_of_a_fault_that_heals_is_given_up(
    ray_head: Child, tmp_path: Path
) -> None:
    """Issue 21, item 7 (a fault that never clears waits forever), its other face: a driver
    that exits "paused, a fault that heals" (75) every time was resubmitted for good, its
    losses never counted. Now, once such losses have gone on for HPROBUST_FAULT_GIVE_UP_S
    with no trial done between them, the study is failed saying so. Real jobs on a real Ray
    head, whose every driver exits 75 at once."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    paused_driver = tmp_path / "paused-driver"
    paused_driver.write_text(f"#!/bin/sh\nexit {EXIT_TRANSIENT}\n")
    paused_driver.chmod(0o755)
    store = StudyStore(sqlite_uri(tmp_path))
    study_id = store.create_study(parse_spec(tiny_spec())).id
    jobs = StudyJobs(
        ray_head.url,
        token=ray_head.extra["token"],
        tracking_uri=store.tracking_uri,
        storage=tmp_path / "ray_results",
        data_dir=tmp_path / "datasets",
        python=str(paused_driver),
    )
    clock = Clock()
    scheduler = Scheduler(
        store, jobs, max_attempts=0, retry_base_s=10, fault_give_up_s=100, clock=clock
    )

    def ended(attempt: int) -> JobRef:
        return wait_for(
            lambda: (r := jobs.find(study_id)) and r.attempt == attempt and r.terminal and r,
            timeout_s=180,
            what=f"job attempt {attempt} to end",
        )

    scheduler.reconcile()
    first = ended(0)
    clock.now = max(clock.now, first.end_time)
    scheduler.reconcile()  # lost to a fault that heals: not counted (max_attempts 0)
    retry = scheduler.retry_of(study_id)
    assert retry is not None and retry.transient
    clock.now = retry.at
    scheduler.reconcile()
    second = ended(1)
    clock.now = max(clock.now, second.end_time, first.end_time + 100)
    scheduler.reconcile()  # lost again, 100 s after the first loss: given up
    record = store.get(study_id)
    assert record.status == "failed", record
    assert record.error.startswith("gave up after 100 s of jobs lost to a fault that does not")
    assert f"exit code {EXIT_TRANSIENT}" in record.error
    assert scheduler.retry_of(study_id) is None
