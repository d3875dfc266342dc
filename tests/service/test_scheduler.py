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
    assert set(counting.experiments) == {f"hprobust-{queued}"}
