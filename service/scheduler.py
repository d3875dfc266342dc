"""The scheduler: the background loop that turns recorded studies into Ray jobs.

Each pass (every ``poll_interval_s``) over the studies MLflow holds as ``queued`` or
``running``:

- a study with a live job (PENDING/RUNNING) is followed and counts against
  ``max_concurrent_studies``;
- a ``running`` study whose job is gone (the cluster lost it, or it was stopped behind the
  service's back, or its driver died without recording an outcome) is resubmitted with
  ``--resume`` (``Tuner.restore``: finished trials are not run or recorded again) after a
  backoff: the n-th resubmission waits ``min(retry_base_s * 2**(n-1), retry_max_s)`` after
  the job ended (:func:`retry_delay`; the time is the study's ``retry_at``, the job's end
  its ``last_error``). Lost jobs count toward ``max_attempts``, after which the study is
  marked ``failed``, unless they were lost to a fault that heals (the driver exited with
  :data:`study.faults.EXIT_TRANSIENT`, or the scheduler saw a dependency down while the
  job ran);
- a ``queued`` study whose job ended without the driver starting it is retried the same way;
- then queued studies are submitted, oldest first, while fewer than ``max_concurrent_studies``
  are active (with ``--resume`` if the study ran before and was re-queued, e.g. by a clean
  shut-down of ``hprobust serve``). A study waiting for a slot stays ``queued``.

On service start the first pass finds every job again through its metadata, so a restarted
service follows what still runs and resumes what was lost. The loop only reads MLflow through
the store and writes statuses through ``set_status``; the driver writes everything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.jobs import JobRef, RayUnavailableError, StudyJobs
from study.faults import EXIT_TRANSIENT
from study.vocab import LIVE, Dependency, StudyStatus, Tag

log = logging.getLogger("hprobust.scheduler")


def dependency_faults(settings: Any) -> dict[str, str]:
    """What the scheduler checks before each pass (Ray and MLflow it meets on its way):
    ``{"disk": "full: ..."}`` while the data dir has less than ``min_free_mb`` free."""
    from study.faults import disk_fault

    paths = [str(settings.data_dir), str(settings.tune_storage)]
    fault = disk_fault(paths, settings.min_free_mb * 1024 * 1024)
    return {Dependency.DISK: fault} if fault else {}


def retry_delay(n: int, base_s: float, max_s: float) -> float:
    """Seconds between a lost job's end and the n-th resubmission of its study (n >= 1):
    ``base_s * 2**(n-1)``, at most ``max_s``."""
    if n < 1:
        return 0.0
    return min(base_s * 2.0 ** min(n - 1, 64), max_s)


def iso(seconds: float) -> str:
    """Unix seconds as an ISO-8601 UTC time (``2026-11-25T03:15:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Retry:
    """A resubmission of a study whose job was lost, and when it is due."""

    attempt: int  # the resubmission it will be (1: the first)
    at: float  # Unix seconds
    failures: int  # lost jobs that count toward max_attempts, this one included
    error: str  # why the lost job ended
    transient: bool  # lost to a fault that heals (not counted)


def job_error(message: str | None) -> str:
    """Ray's message of an ended job, short: its first clause and the last line of the logs
    it quotes (the driver's own last word, e.g. ``study ... paused: disk full: ...``)."""
    if not message:
        return "no message"
    head, _, logs = message.partition(", last available logs")
    lines = [line.strip() for line in logs.splitlines()[1:] if line.strip()]
    return f"{head.strip()}: {lines[-1]}" if lines else head.strip()


def lost_to_a_fault(ref: JobRef | None, fault_seen_at: float | None) -> bool:
    """Whether a lost job went down with a fault that heals: its driver said so (exit code
    EXIT_TRANSIENT), or a dependency was seen down while it ran."""
    if ref is None:
        return fault_seen_at is not None
    if ref.message and f"exit code {EXIT_TRANSIENT}" in ref.message:
        return True
    started = ref.start_time or 0.0
    return fault_seen_at is not None and fault_seen_at >= started


class Scheduler:
    """Submits queued studies within the concurrency limit and follows their jobs."""

    def __init__(
        self,
        store: Any,
        jobs: StudyJobs,
        *,
        max_concurrent: int = 1,
        poll_interval_s: float = 2.0,
        max_attempts: int = 3,
        retry_base_s: float = 10.0,
        retry_max_s: float = 300.0,
        on_change: Any = None,
        clock: Callable[[], float] = time.time,
        check: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.max_concurrent = max_concurrent
        self.poll_interval_s = poll_interval_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.on_change = on_change or (lambda study_id: None)
        self.clock = clock
        self.check = check or dict  # {dependency: what is wrong} for those that are down
        self.faults: dict[str, str] = {}  # as the last pass found them; live studies pause
        self._checked: dict[str, str] = {}  # what this pass's check() found
        self.following: dict[str, JobRef] = {}
        self.retries: dict[str, Retry] = {}  # study id -> its pending resubmission
        self.fault_seen_at: float | None = None  # when a dependency was last seen down
        self._looked_up: set[str] = set()
        self._signed_ids: set[str] = set()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hprobust-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Run a pass now (after a new study or a cancel)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
                self.last_error = None
                faults = dict(self._checked)
            except Exception as exc:  # keep looping: Ray or MLflow may come back
                self.last_error = f"{type(exc).__name__}: {exc}"
                down = Dependency.RAY if isinstance(exc, RayUnavailableError) else Dependency.MLFLOW
                faults = {**self._checked, down: f"unreachable: {self.last_error}"[:500]}
                self.fault_seen_at = self.clock()  # jobs lost meanwhile are not counted
            self._note(faults)
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _note(self, faults: dict[str, str]) -> None:
        """Keep (and log the changes of) what is down; live studies pause while it is."""
        if faults and set(faults) != set(self.faults):
            log.warning("studies pause: %s", "; ".join(f"{k} {v}" for k, v in faults.items()))
        elif not faults and self.faults:
            log.warning("%s answer(s) again: studies resume", ", ".join(self.faults))
        self.faults = faults

    # -- one pass ---------------------------------------------------------------------------
    def job_of(self, study_id: str) -> JobRef | None:
        """The job followed for ``study_id`` (no lock: a pass may hold it for seconds)."""
        return self.following.get(study_id)

    def _current_job(self, study_id: str) -> JobRef | None:
        ref = self.following.get(study_id)
        if ref is None and study_id not in self._looked_up:
            ref = self.jobs.find(study_id)  # after a restart: find the job again
            self._looked_up.add(study_id)
        if ref is None:
            return None
        try:
            ref = self.jobs.status(ref)
        except LookupError:  # the cluster no longer knows it (e.g. a new head)
            self.following.pop(study_id, None)
            return None
        self.following[study_id] = ref
        return ref

    def reconcile(self) -> None:
        """One pass (see the module doc). Raises RayUnavailableError if Ray cannot be reached."""
        with self._lock:
            self._checked = self.check()
            if self._checked:
                self.fault_seen_at = self.clock()
            # MLflow filters on the status tag: only the live studies are read, not their specs
            # signed studies whose status the service sealed (study.records.signing): a
            # status tag written by anyone else is reported and not acted on
            records = [
                r
                for r in self.store.states(LIVE)
                if self._signed(r) and self.store.check_status(r.id).sealed
            ]
            records.sort(key=lambda r: (r.created_at or "", r.id))
            active = 0
            waiting: list[Any] = []
            for record in records:
                ref = self._current_job(record.id)
                if ref is not None and not ref.terminal:
                    active += 1
                    continue
                # re-read: the driver may have just recorded its outcome
                fresh = self.store.state(record.id)
                if fresh.status not in LIVE:
                    self.following.pop(record.id, None)
                    self.on_change(record.id)
                    continue
                if ref is None and fresh.status == StudyStatus.QUEUED:
                    waiting.append(fresh)
                    continue
                # a job existed and ended, or a running study lost its job: resume it
                if self._resubmit_when_due(fresh, ref):
                    active += 1
            for record in waiting:
                if active >= self.max_concurrent or self._checked:
                    break  # no slot, or paused by a fault
                # a study that ran before (then was re-queued) resumes from its checkpoints
                resume = record.started_at is not None or (self.jobs.storage / record.id).exists()
                previous = self.jobs.find(record.id) if resume else None
                attempt = previous.attempt + 1 if previous is not None else 0
                log.info("submitting study %s (resume=%s)", record.id, resume)
                self.retries.pop(record.id, None)
                self.following[record.id] = self.jobs.submit(
                    record.id, resume=resume, attempt=attempt
                )
                self._looked_up.add(record.id)
                self.on_change(record.id)
                active += 1

    def _resubmit_when_due(self, record: Any, ref: JobRef | None) -> bool:
        """Plan (once per lost job) and, when due, make the resubmission of ``record``'s study;
        or mark it failed once its lost jobs use up ``max_attempts``. True while the study
        keeps its slot (resubmitted, or waiting for its retry)."""
        now = self.clock()
        retry = self.retries.get(record.id)
        if retry is None:
            retry = self._plan_retry(record, ref, now)
            if retry is None:
                return False
        if now < retry.at or self._checked:
            return True  # waits for its retry (or for the fault to clear), in its slot
        log.warning(
            "study %s: resubmitting with --resume (attempt %d) after: %s",
            record.id,
            retry.attempt,
            retry.error,
        )
        self.following[record.id] = self.jobs.submit(
            record.id, resume=True, attempt=retry.attempt, failures=retry.failures
        )
        self.retries.pop(record.id, None)
        # written again now: when it was planned the store may not have taken it (disk full)
        self._tag(record.id, {Tag.RETRY_AT: None, Tag.LAST_ERROR: retry.error})
        self.on_change(record.id)
        return True

    def _plan_retry(self, record: Any, ref: JobRef | None, now: float) -> Retry | None:
        if ref is not None:
            attempt, failures = ref.attempt + 1, ref.failures
            error = f"its Ray job {ref.submission_id} ended {ref.status}: {job_error(ref.message)}"
            ended = ref.end_time or now
        else:  # a running study whose job the cluster no longer knows
            previous = self.jobs.find(record.id)
            attempt = 1 if previous is None else previous.attempt + 1
            failures = 0 if previous is None else previous.failures
            error, ended = "its Ray job is gone", now
        transient = lost_to_a_fault(ref, self.fault_seen_at)
        failures += 0 if transient else 1
        error = error.strip()[:2000]
        if failures > self.max_attempts:
            message = (
                f"its driver ended without an outcome {failures} times (HPROBUST_MAX_ATTEMPTS="
                f"{self.max_attempts}); the last time: {error}"
            )
            log.error("study %s failed: %s", record.id, message)
            self.store.set_error(record.id, message)
            self.store.set_status(record.id, StudyStatus.FAILED)
            self.following.pop(record.id, None)
            self.retries.pop(record.id, None)
            self._tag(record.id, {Tag.RETRY_AT: None})
            self.on_change(record.id)
            return None
        at = ended + retry_delay(attempt, self.retry_base_s, self.retry_max_s)
        retry = Retry(attempt, at, failures, error, transient)
        self.retries[record.id] = retry
        log.warning(
            "study %s is %s but %s; resubmitting at %s%s",
            record.id,
            record.status,
            error,
            iso(at),
            " (a fault that heals: not counted)" if transient else "",
        )
        self._tag(record.id, {Tag.RETRY_AT: iso(at), Tag.LAST_ERROR: error})
        self.on_change(record.id)
        return retry

    def _tag(self, study_id: str, tags: dict[str, str | None]) -> None:
        """Best effort: the retry's tags say what the scheduler plans (it keeps the plan in
        memory either way, e.g. while the store cannot be written)."""
        try:
            self.store.set_tags(study_id, tags)
        except Exception as exc:
            log.warning("could not record %s on study %s: %s", sorted(tags), study_id, exc)

    def paused(self) -> str | None:
        """Why live studies wait (the dependencies down at the last pass), or None."""
        return "; ".join(f"{k} {v}" for k, v in self.faults.items()) or None

    def retry_of(self, study_id: str) -> Retry | None:
        """The pending resubmission of ``study_id``, if its job was lost."""
        return self.retries.get(study_id)

    def resume(self, study_id: str) -> None:
        """Re-queue a failed or cancelled study; the next pass submits it with ``--resume``
        (``Tuner.restore``: trials already recorded are not run or recorded again).

        The study's error becomes its ``last_error`` (its ``error`` and ``finished_at`` go) and
        its lost-job count starts again. Raises StudyNotFoundError, or StudyStateError if the
        study is queued, running or finished.
        """
        from study.errors import StudyStateError

        with self._lock:
            record = self.store.get(study_id)
            if record.status in LIVE:
                raise StudyStateError(
                    f"study {study_id} is {record.status}: only a failed or cancelled study can "
                    "be resumed"
                )
            if record.status == StudyStatus.FINISHED:
                raise StudyStateError(f"study {study_id} is finished: there is nothing to resume")
            self.store.set_tags(
                study_id,
                {
                    Tag.LAST_ERROR: record.error or f"{record.status} before it was resumed",
                    Tag.ERROR: None,
                    Tag.FINISHED_AT: None,
                    Tag.RETRY_AT: None,
                },
            )
            self.store.set_status(study_id, StudyStatus.QUEUED)
            # its old job is over: the next pass submits the study as a queued one that ran
            self.following.pop(study_id, None)
            self.retries.pop(study_id, None)
            self._looked_up.add(study_id)
            self.on_change(study_id)
        self.wake()

    def _signed(self, record: Any) -> bool:
        """Whether the study's signature holds (study.records.signing); one that does not is marked
        failed with why and never submitted. Checked once per study and service run (the
        driver checks again before it runs)."""
        if record.id in self._signed_ids:
            return True
        problem = self.store.signature_problem(record.id)
        if problem is None:
            self._signed_ids.add(record.id)
            return True
        log.error("study %s is not run: %s", record.id, problem)
        self.store.refuse(record.id, problem)
        self.on_change(record.id)
        return False

    def cancel(self, study_id: str, *, wait_s: float = 15.0) -> bool:
        """Stop the study's job (if any), wait for it to end, then record ``cancelled``.

        Holding the scheduler's lock throughout, so a pass cannot take the stopped job for a
        lost one and resume it. Returns True if a running job was stopped. Raises
        RayUnavailableError (and changes nothing) if Ray cannot be reached.
        """
        import time

        with self._lock:
            ref = self.following.get(study_id) or self.jobs.find(study_id)
            stopped = False
            if ref is not None:
                stopped = self.jobs.stop(ref)
                deadline = time.monotonic() + wait_s
                while stopped and time.monotonic() < deadline:
                    try:
                        if self.jobs.status(ref).terminal:
                            break
                    except LookupError:
                        break
                    time.sleep(0.25)
            self.store.set_status(study_id, StudyStatus.CANCELLED)
            self.following.pop(study_id, None)
            self.retries.pop(study_id, None)
            self._looked_up.add(study_id)
            self.on_change(study_id)
            return stopped
