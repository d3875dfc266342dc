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
  shut-down of ``hprobust serve``). A study waiting for a slot stays ``queued``. The studies
  of a suite (created together) go in the suite's workload order (:func:`submit_order`).

No study can hold up another:

- each submission is numbered after the latest job the cluster holds for the study
  (:func:`service.jobs.submission_id_of`), so a study cancelled or failed and then resumed
  never asks Ray for a submission id it used before;
- a submission Ray refuses (it answered with an error: :class:`service.jobs.RayRefusedError`)
  concerns that study only: it keeps no slot, the pass goes on to the next study, and it is
  tried again after ``retry_delay`` (its ``retry_at`` and ``last_error`` say so) up to
  ``submit_tries`` times, after which it is ``failed`` with Ray's answer. Whether Ray answers
  at all is asked as ``/readyz`` asks it (:meth:`StudyJobs.ping`): only when it does not are
  studies paused for ``ray`` (and ``/readyz`` says the same);
- any other error met with one study is logged (and kept as its ``last_error``) and the pass
  goes on; only Ray or MLflow down stops a pass.

Faults that never clear are given up on: a live study paused for a dependency that stays
down ``fault_give_up_s`` (HPROBUST_FAULT_GIVE_UP_S), or whose jobs keep being lost to faults
that heal without a trial done between them for as long, is ``failed`` with
``gave up after <time> ...: <the fault>``. Studies left ``creating`` longer than
``creating_grace_s`` (a creation whose process died, or whose roll-back failed) are rolled
back at the first pass and then every ``sweep_interval_s``
(:meth:`study.records.store.StudyStore.roll_back_stuck`).

A warm driver keeps a study's start short (``standby_s`` > 0, HPROBUST_WARM_DRIVER_S): while
a slot is free, the scheduler keeps one driver submitted ahead of any study, for a study id
it reserves (:meth:`StudyJobs.submit` with ``standby_s``); the driver joins Ray and imports
what a study needs, then waits for its study (:func:`study.driver.stand_by`). The next study
created on its own (not a suite's) takes that id (:meth:`take_standby`) and is run by the
waiting driver at once: to the rest of the scheduler that job is the study's first job like
any other (cancel, loss, resume). A warm driver is handed out only while a slot is free and
well before its wait ends; one that ends with no study (its wait is over, or it was stopped)
is deleted from the cluster's job list and replaced, and a study whose warm driver ended
before it started is submitted again at once, not counted as a lost job. One that fails on
its own is replaced after ``retry_delay``. Warm drivers a previous run of the service left
with no study are stopped at the first pass.

On service start the first pass finds every job again through its metadata, so a restarted
service follows what still runs and resumes what was lost. The loop only reads MLflow through
the store and writes statuses through ``set_status``; the driver writes everything else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.jobs import JobRef, RayRefusedError, RayUnavailableError, StudyJobs
from study.errors import StudyNotFoundError
from study.faults import EXIT_TRANSIENT, classify
from study.records.ids import new_study_id
from study.vocab import LIVE, Dependency, StudyStatus, Tag

log = logging.getLogger("hprobust.scheduler")


def dependency_faults(settings: Any) -> dict[str, str]:
    """What the scheduler checks before each pass (Ray and MLflow it meets on its way):
    ``{"disk": "full: ..."}`` while the data dir has less than ``min_free_mb`` free."""
    from study.faults import disk_fault

    paths = [str(settings.data_dir), str(settings.tune_storage)]
    fault = disk_fault(paths, settings.min_free_mb * 1024 * 1024)
    return {Dependency.DISK: fault} if fault else {}


def submit_order(record: Any) -> tuple[str, int, str, int, str]:
    """The order live studies are submitted in: oldest first (``created_at``, then, within
    its second, when MLflow made the experiment); then by suite (its own id for a study on
    its own), workload index and id: a suite's studies go in its workload order."""
    index = getattr(record, "suite_index", None)
    suite = getattr(record, "suite_id", None) or record.id
    created_ms = getattr(record, "created_ms", None) or 0
    return (
        record.created_at or "",
        created_ms,
        suite,
        index if index is not None else 0,
        record.id,
    )


def retry_delay(n: int, base_s: float, max_s: float) -> float:
    """Seconds between a lost job's end and the n-th resubmission of its study (n >= 1):
    ``base_s * 2**(n-1)``, at most ``max_s``."""
    if n < 1:
        return 0.0
    return min(base_s * 2.0 ** min(n - 1, 64), max_s)


def span(seconds: float) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``4.0 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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


@dataclass(frozen=True)
class Refusal:
    """Ray refused to start a study's job ``tries`` times so far; the next try is at ``at``."""

    tries: int
    at: float  # Unix seconds
    error: str  # what the study shows as its last_error meanwhile


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


#: A warm driver is not handed to a study in the last part of its wait (at most this long),
#: so that it does not end before it reads its study.
STANDBY_MARGIN_S = 30.0


def standby_margin(standby_s: float) -> float:
    """How long before its wait ends a warm driver of ``standby_s`` is no longer handed out:
    :data:`STANDBY_MARGIN_S`, at most a quarter of the wait."""
    return min(STANDBY_MARGIN_S, standby_s / 4)


#: Where a pass places a live study: it holds a slot; it wants one; neither (it ended, or it
#: waits for the next try of a refused submission).
ACTIVE, WAITING, IDLE = "active", "waiting", "idle"


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
        submit_tries: int = 5,
        fault_give_up_s: float = 14400.0,
        creating_grace_s: float = 600.0,
        sweep_interval_s: float = 60.0,
        standby_s: float = 0.0,
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
        self.submit_tries = submit_tries
        self.fault_give_up_s = fault_give_up_s
        self.creating_grace_s = creating_grace_s
        self.sweep_interval_s = sweep_interval_s
        self.refusals: dict[str, Refusal] = {}  # study id -> its refused submission
        self.paused_since: dict[str, float] = {}  # study id -> paused by a fault since
        self.lost_since: dict[str, tuple[float, int]] = {}  # study id -> (first loss of its
        # streak of jobs lost to faults that heal, its trials done then)
        self._sweep_at: float | None = None  # the next roll-back of stuck creations
        self._study_errors: dict[str, str] = {}  # the last error logged for a study
        self._looked_up: set[str] = set()
        self._signed_ids: set[str] = set()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # the warm driver (see the module doc); what is shared with take_standby, called by
        # the API's threads, is guarded by _standby_lock (a pass's _lock is held for seconds)
        self.standby_s = standby_s
        self.standby: JobRef | None = None  # the warm driver waiting for the next study
        self._standby_since = 0.0  # when it was submitted (self.clock)
        self._standby_lock = threading.Lock()
        self._free_slots = 0  # as the last pass left them; a warm driver taken uses one
        self._taken: dict[str, JobRef] = {}  # study id -> its warm driver, until followed
        self._unused: list[JobRef] = []  # warm drivers whose reserved id will never be used
        self._standby_failures = 0  # warm drivers in a row that failed on their own
        self._standby_next = 0.0  # no new warm driver before this (after a failed one)
        self._standbys_swept = False

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hprobust-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop, and stop the warm driver (if any; best effort)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._standby_lock:
            ref, self.standby, self._free_slots = self.standby, None, 0
        if ref is not None:
            with contextlib.suppress(Exception):
                self.jobs.stop(ref)

    def wake(self) -> None:
        """Run a pass now (after a new study or a cancel)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # never stop looping
                log.exception("the scheduler's turn failed")
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def step(self) -> None:
        """One turn of the loop: a pass (:meth:`reconcile`); what it found down is noted (live
        studies pause while it is); then the studies paused for longer than
        ``fault_give_up_s`` are failed (:meth:`give_up`)."""
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
        self.give_up(faults)

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
        if ref is None:
            with self._standby_lock:
                ref = self._taken.pop(study_id, None)  # it took the warm driver
            if ref is not None:
                self._looked_up.add(study_id)
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
        """One pass (see the module doc). Raises RayUnavailableError if Ray cannot be reached,
        and what the store raises when MLflow cannot be read or written; an error with one
        study is that study's (logged, the pass goes on)."""
        with self._lock:
            with self._standby_lock:
                self._free_slots = 0  # no warm driver is handed out while a pass decides
            now = self.clock()
            self._checked = self.check()
            if self._checked:
                self.fault_seen_at = now
            self._sweep(now)
            # MLflow filters on the status tag: only the live studies are read, not their specs
            # signed studies whose status the service sealed (study.records.signing): a
            # status tag written by anyone else is reported and not acted on
            records = []
            for record in self.store.states(LIVE):
                with self._studys_own(record.id):
                    if self._signed(record) and self.store.check_status(record.id).sealed:
                        records.append(record)
            # oldest first; a suite's studies (created together) in its workload order
            records.sort(key=submit_order)
            active = 0
            waiting: list[Any] = []
            for record in records:
                place, fresh = IDLE, record
                with self._studys_own(record.id):
                    place, fresh = self._place(record, now)
                if place == ACTIVE:
                    active += 1
                elif place == WAITING:
                    waiting.append(fresh)
            for record in waiting:
                if active >= self.max_concurrent or self._checked:
                    break  # no slot, or paused by a fault
                refusal = self.refusals.get(record.id)
                if refusal is not None and now < refusal.at:
                    continue  # Ray refused it: its next try is later; the next study goes on
                with self._studys_own(record.id):
                    if self._submit(record, now):
                        active += 1
            self._keep_standby(now, active, {record.id for record in records})

    # -- the warm driver --------------------------------------------------------------------
    def take_standby(self) -> str | None:
        """The study id reserved for the warm driver, for a study being created now (the
        study recorded under it is run by that driver at once), or None: no warm driver, no
        free slot, or its wait ends soon. Called by the API; does not wait for a pass. If the
        study is not recorded under the id after all, say so with :meth:`standby_unused`."""
        with self._standby_lock:
            ref = self.standby
            if ref is None or ref.terminal or self._free_slots < 1:
                return None
            if self.clock() - self._standby_since > self.standby_s - standby_margin(self.standby_s):
                return None  # it may end before it reads its study: a pass replaces it
            self.standby, self._free_slots = None, self._free_slots - 1
            self._taken[ref.study_id] = ref
            self._standby_failures = 0
        self.wake()  # a new warm driver for the next study
        return ref.study_id

    def standby_unused(self, study_id: str) -> None:
        """The study id given by :meth:`take_standby` will not be recorded (the creation
        failed, or was a replay of an earlier one): its warm driver is stopped at the next
        pass."""
        with self._standby_lock:
            ref = self._taken.pop(study_id, None)
            if ref is not None:
                self._unused.append(ref)
        self.wake()

    def _keep_standby(self, now: float, active: int, seen: set[str]) -> None:
        """After a pass: the slots left free (``active`` studies hold one each, and so does
        every warm driver taken by a study this pass did not see yet, until it ends), and a
        warm driver waiting for the next study while one is free (see the module doc)."""
        if self.standby_s <= 0:
            return
        with self._standby_lock:
            unused, self._unused = self._unused, []
            taken = [ref for study_id, ref in self._taken.items() if study_id not in seen]
            ref = self.standby
        for old in unused:
            with contextlib.suppress(Exception):
                self.jobs.stop(old)
        for old in taken:  # recorded since, or being recorded: it holds a slot while it runs
            try:
                ended = self.jobs.status(old).terminal
            except LookupError:
                ended = True
            if ended:
                with self._standby_lock:
                    self._taken.pop(old.study_id, None)
            else:
                active += 1
        if not self._standbys_swept:
            self._sweep_standbys(ref)
        if ref is not None:
            ref = self._standby_status(ref, now)
        free = 0 if self._checked else max(0, self.max_concurrent - active)
        if ref is None and free > 0 and now >= self._standby_next:
            study_id = new_study_id()
            try:
                ref = self.jobs.submit(study_id, standby_s=self.standby_s)
                self._standby_since = now
            except RayRefusedError as exc:
                self._standby_failed(now, f"Ray refused it: {exc}")
        with self._standby_lock:
            self.standby, self._free_slots = ref, free

    def _standby_status(self, ref: JobRef, now: float) -> JobRef | None:
        """The warm driver as it is now, or None once it has ended (then it is deleted from
        the cluster's job list; one that failed delays the next)."""
        try:
            ref = self.jobs.status(ref)
        except LookupError:
            return None  # the cluster no longer knows it (a new head)
        if not ref.terminal:
            return ref
        if ref.status == "FAILED":
            self._standby_failed(now, f"its job {ref.submission_id}: {job_error(ref.message)}")
        with contextlib.suppress(Exception):
            self.jobs.delete(ref)
        return None

    def _standby_failed(self, now: float, error: str) -> None:
        self._standby_failures += 1
        delay = retry_delay(self._standby_failures, self.retry_base_s, self.retry_max_s)
        self._standby_next = now + delay
        log.warning("the warm driver failed (the next in %s): %s", span(delay), error[:1000])

    def _sweep_standbys(self, own: JobRef | None) -> None:
        """Stop the warm drivers a previous run of the service left on the cluster with no
        study (a study that took one is followed as its job)."""
        for ref in self.jobs.standbys():
            if own is not None and ref.submission_id == own.submission_id:
                continue
            try:
                self.store.state(ref.study_id)
            except StudyNotFoundError:
                log.info("stopping the warm driver %s left with no study", ref.submission_id)
                self.jobs.stop(ref)
        self._standbys_swept = True

    def _place(self, record: Any, now: float) -> tuple[str, Any]:
        """Follow ``record``'s job; where it stands in this pass (ACTIVE, WAITING, IDLE) and
        its state as read now."""
        ref = self._current_job(record.id)
        if ref is not None and not ref.terminal:
            return ACTIVE, record
        # re-read: the driver may have just recorded its outcome
        fresh = self.store.state(record.id)
        if fresh.status not in LIVE:
            self._forget(record.id)
            self.on_change(record.id)
            return IDLE, fresh
        if ref is None and fresh.status == StudyStatus.QUEUED and record.id not in self.retries:
            return WAITING, fresh
        if (
            ref is not None
            and ref.standby
            and ref.status in ("STOPPED", "SUCCEEDED")
            and fresh.status == StudyStatus.QUEUED
            and record.id not in self.retries
        ):  # its warm driver ended before it read the study: submitted again, not counted
            self.following.pop(record.id, None)
            return WAITING, fresh
        # a job existed and ended, or a running study lost its job: resume it
        return self._resubmit_when_due(fresh, ref, now), fresh

    @contextlib.contextmanager
    def _studys_own(self, study_id: str) -> Iterator[None]:
        """Errors met with one study stay that study's: logged (once each) and kept as its
        ``last_error``; the pass goes on with the others. Ray unreachable and the store's
        faults that heal (unreachable, full) concern every study: they end the pass."""
        try:
            yield
        except Exception as exc:
            if isinstance(exc, RayUnavailableError) or classify(exc) is not None:
                raise
            message = f"{type(exc).__name__}: {exc}"[:1000]
            if self._study_errors.get(study_id) != message:
                self._study_errors[study_id] = message
                log.error(
                    "study %s: the scheduler's pass failed on it (the others go on): %s",
                    study_id,
                    message,
                    exc_info=exc,
                )
                self._tag(study_id, {Tag.LAST_ERROR: f"the scheduler met an error: {message}"})
                self.on_change(study_id)

    def _submit(self, record: Any, now: float) -> bool:
        """Submit ``record``'s study (a pending retry's resubmission, else its first job or,
        for a study resumed or re-queued, the job after the latest one the cluster holds for
        it); False if Ray refused it (:meth:`_refused`). Raises RayUnavailableError when Ray
        does not answer at all."""
        retry = self.retries.get(record.id)
        if retry is not None:
            resume, attempt, failures = True, retry.attempt, retry.failures
            log.warning(
                "study %s: resubmitting with --resume (attempt %d) after: %s",
                record.id,
                attempt,
                retry.error,
            )
        else:
            # a study that ran before (then was re-queued) resumes from its checkpoints
            resume = record.started_at is not None or (self.jobs.storage / record.id).exists()
            # numbered after its latest job, whatever became of it: a submission id is never
            # asked for twice (Ray refuses that for good)
            previous = self.jobs.find(record.id)
            attempt = previous.attempt + 1 if previous is not None else 0
            failures = 0
            log.info("submitting study %s (resume=%s, attempt %d)", record.id, resume, attempt)
        try:
            ref = self.jobs.submit(record.id, resume=resume, attempt=attempt, failures=failures)
        except RayRefusedError as exc:
            self.jobs.ping()  # Ray answers at all? (as /readyz asks); if not, every study waits
            self._refused(record, exc, now)
            return False
        if ref.adopted:
            log.warning(
                "study %s: its job %s was submitted already (another replica of the API?); "
                "following it",
                record.id,
                ref.submission_id,
            )
        self.following[record.id] = ref
        self._looked_up.add(record.id)
        refused = self.refusals.pop(record.id, None)
        self.retries.pop(record.id, None)
        if retry is not None:  # written again now: when planned, the store may have failed
            self._tag(record.id, {Tag.RETRY_AT: None, Tag.LAST_ERROR: retry.error})
        elif refused is not None:
            self._tag(record.id, {Tag.RETRY_AT: None})
        self.on_change(record.id)
        return True

    def _refused(self, record: Any, exc: RayRefusedError, now: float) -> None:
        """Ray refused ``record``'s job: try again after ``retry_delay``, or, at the
        ``submit_tries``-th refusal, mark the study failed with Ray's answer."""
        previous = self.refusals.get(record.id)
        tries = 1 + (previous.tries if previous is not None else 0)
        if tries >= self.submit_tries:
            self._fail(
                record.id,
                f"Ray refused to start its job {tries} times (HPROBUST_SUBMIT_TRIES="
                f"{self.submit_tries}); the last time: {exc}",
            )
            return
        at = now + retry_delay(tries, self.retry_base_s, self.retry_max_s)
        error = (
            f"Ray refused to start its job (try {tries} of {self.submit_tries}; "
            f"the next at {iso(at)}): {exc}"
        )[:2000]
        self.refusals[record.id] = Refusal(tries, at, error)
        log.warning("study %s: %s", record.id, error)
        self._tag(record.id, {Tag.RETRY_AT: iso(at), Tag.LAST_ERROR: error})
        self.on_change(record.id)

    def _resubmit_when_due(self, record: Any, ref: JobRef | None, now: float) -> str:
        """Plan (once per lost job) and, when due, make the resubmission of ``record``'s study;
        or mark it failed once its lost jobs use up ``max_attempts``. ACTIVE while the study
        keeps its slot (resubmitted, or waiting for its retry); WAITING once Ray refused its
        resubmission (it then waits for a free slot as a queued study does); IDLE if it
        failed or its resubmission was refused just now."""
        retry = self.retries.get(record.id)
        if retry is None:
            retry = self._plan_retry(record, ref, now)
            if retry is None:
                return IDLE
        if record.id in self.refusals:
            return WAITING
        if now < retry.at or self._checked:
            return ACTIVE  # waits for its retry (or for the fault to clear), in its slot
        return ACTIVE if self._submit(record, now) else IDLE

    def _plan_retry(self, record: Any, ref: JobRef | None, now: float) -> Retry | None:
        """The resubmission of a study whose job was lost, or None once the study is failed
        (``max_attempts`` used up, or ``fault_give_up_s`` of losses to faults that heal)."""
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
            self._fail(
                record.id,
                f"its driver ended without an outcome {failures} times (HPROBUST_MAX_ATTEMPTS="
                f"{self.max_attempts}); the last time: {error}",
            )
            return None
        if transient and self._lost_too_long(record, now):
            since, _ = self.lost_since[record.id]
            self._fail(
                record.id,
                f"gave up after {span(now - since)} of jobs lost to a fault that does not "
                f"clear, no trial done between them (HPROBUST_FAULT_GIVE_UP_S="
                f"{self.fault_give_up_s:g}); the last: {error}",
            )
            return None
        if not transient:
            self.lost_since.pop(record.id, None)
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

    def _lost_too_long(self, record: Any, now: float) -> bool:
        """Note one more job of ``record``'s study lost to a fault that heals; True once its
        streak of such losses (broken when a trial was done between two of them) has lasted
        ``fault_give_up_s``."""
        done = record.segment_done or 0
        since, done_then = self.lost_since.get(record.id, (now, done))
        if done > done_then:  # its last driver got further: the fault let it work
            since, done_then = now, done
        self.lost_since[record.id] = (since, done_then)
        return now - since >= self.fault_give_up_s

    def give_up(self, faults: dict[str, str]) -> None:
        """Fail the live studies that ``faults`` (what is down, as :meth:`step` found it)
        have paused for ``fault_give_up_s`` without a break, with ``gave up after <time>
        paused: <what is down>``. A study whose record cannot be written then is given up on
        at the next pass that can write it. While MLflow itself cannot be read, no study can
        be seen or recorded: that fault shows in ``/readyz`` and the log, not on a study."""
        if not faults:
            self.paused_since.clear()
            return
        now = self.clock()
        try:
            live = self.store.states(LIVE)
        except Exception:
            return  # MLflow cannot be read: nothing could be recorded now either
        ids = {state.id for state in live}
        for study_id in set(self.paused_since) - ids:
            del self.paused_since[study_id]
        what = "; ".join(f"{k} {v}" for k, v in faults.items())
        for state in live:
            since = self.paused_since.setdefault(state.id, now)
            if now - since < self.fault_give_up_s:
                continue
            message = (
                f"gave up after {span(now - since)} paused (HPROBUST_FAULT_GIVE_UP_S="
                f"{self.fault_give_up_s:g}): {what}"
            )[:4000]
            try:
                with self._lock:
                    self._fail(state.id, message)
            except Exception as exc:
                log.warning("study %s: could not record that it was given up: %s", state.id, exc)

    def _sweep(self, now: float) -> None:
        """Roll back the studies left ``creating`` for longer than ``creating_grace_s`` (at the
        first pass, then every ``sweep_interval_s``); each one is logged."""
        if self._sweep_at is not None and now < self._sweep_at:
            return
        self._sweep_at = now + self.sweep_interval_s
        try:
            rolled_back = self.store.roll_back_stuck(self.creating_grace_s, now=now)
        except Exception as exc:  # tried again at the next sweep
            log.warning("could not roll back the studies stuck in creating: %s", exc)
            return
        for study_id, reason in rolled_back:
            log.warning("study %s rolled back: %s", study_id, reason)

    def _fail(self, study_id: str, message: str) -> None:
        """Mark the study failed with ``message`` (its job, if one still runs, is stopped)."""
        log.error("study %s failed: %s", study_id, message)
        ref = self.following.get(study_id)
        if ref is not None and not ref.terminal:
            with contextlib.suppress(Exception):
                self.jobs.stop(ref)
        self.store.set_error(study_id, message)
        self.store.set_status(study_id, StudyStatus.FAILED)
        self._forget(study_id)
        self._tag(study_id, {Tag.RETRY_AT: None})
        self.on_change(study_id)

    def _forget(self, study_id: str) -> None:
        """Drop what the scheduler keeps about a study that ended (or starts anew)."""
        with self._standby_lock:
            self._taken.pop(study_id, None)
        for kept in (
            self.following,
            self.retries,
            self.refusals,
            self.paused_since,
            self.lost_since,
            self._study_errors,
        ):
            kept.pop(study_id, None)

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

    def retry_of(self, study_id: str) -> Retry | Refusal | None:
        """The pending resubmission of ``study_id`` (its job was lost, or Ray refused it):
        when (``at``) and why (``error``)."""
        return self.refusals.get(study_id) or self.retries.get(study_id)

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
            # its old job is over: the next pass submits the study as a queued one that ran,
            # numbered after that job
            self._forget(study_id)
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
            self._forget(study_id)
            self._looked_up.add(study_id)
            self.on_change(study_id)
            return stopped
