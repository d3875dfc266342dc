"""The scheduler: the background loop that turns recorded studies into Ray jobs.

Each pass (every ``poll_interval_s``) over the studies MLflow holds as ``queued`` or
``running``:

- a study with a live job (PENDING/RUNNING) is followed and counts against
  ``max_concurrent_studies``;
- a ``running`` study whose job is gone (the cluster lost it, or it was stopped behind the
  service's back, or its driver died without recording an outcome) is resubmitted with
  ``--resume`` (``Tuner.restore``: finished trials are not run or recorded again), at most
  ``max_attempts`` times, then marked ``failed``;
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
from typing import Any

from service.jobs import JobRef, StudyJobs

log = logging.getLogger("hprobust.scheduler")

ACTIVE = ("queued", "running")


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
        on_change: Any = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.max_concurrent = max_concurrent
        self.poll_interval_s = poll_interval_s
        self.max_attempts = max_attempts
        self.on_change = on_change or (lambda study_id: None)
        self.following: dict[str, JobRef] = {}
        self._looked_up: set[str] = set()
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
            except Exception as exc:  # keep looping: Ray or MLflow may come back
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("scheduler pass failed: %s", self.last_error)
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

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
            records = [r for r in self.store.list() if r.status in ACTIVE]
            records.sort(key=lambda r: (r.created_at or "", r.id))
            active = 0
            waiting: list[Any] = []
            for record in records:
                ref = self._current_job(record.id)
                if ref is not None and not ref.terminal:
                    active += 1
                    continue
                # re-read: the driver may have just recorded its outcome
                fresh = self.store.get(record.id)
                if fresh.status not in ACTIVE:
                    self.following.pop(record.id, None)
                    self.on_change(record.id)
                    continue
                if ref is None and fresh.status == "queued":
                    waiting.append(fresh)
                    continue
                # a job existed and ended, or a running study lost its job: resume it
                attempt = (ref.attempt + 1) if ref is not None else self._next_attempt(fresh.id)
                if attempt >= self.max_attempts + 1:
                    reason = ref.message if ref is not None else "its Ray job is gone"
                    log.error("study %s failed after %d attempts: %s", fresh.id, attempt, reason)
                    self.store.set_status(fresh.id, "failed")
                    self.following.pop(fresh.id, None)
                    self.on_change(fresh.id)
                    continue
                log.warning(
                    "study %s is %s but its job is %s: resubmitting with --resume",
                    fresh.id,
                    fresh.status,
                    ref.status if ref is not None else "gone",
                )
                self.following[fresh.id] = self.jobs.submit(fresh.id, resume=True, attempt=attempt)
                self.on_change(fresh.id)
                active += 1
            for record in waiting:
                if active >= self.max_concurrent:
                    break
                # a study that ran before (then was re-queued) resumes from its checkpoints
                resume = record.started_at is not None or (self.jobs.storage / record.id).exists()
                previous = self.jobs.find(record.id) if resume else None
                attempt = previous.attempt + 1 if previous is not None else 0
                log.info("submitting study %s (resume=%s)", record.id, resume)
                self.following[record.id] = self.jobs.submit(
                    record.id, resume=resume, attempt=attempt
                )
                self._looked_up.add(record.id)
                self.on_change(record.id)
                active += 1

    def _next_attempt(self, study_id: str) -> int:
        ref = self.jobs.find(study_id)
        return 1 if ref is None else ref.attempt + 1

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
            self.store.set_status(study_id, "cancelled")
            self.following.pop(study_id, None)
            self._looked_up.add(study_id)
            self.on_change(study_id)
            return stopped
