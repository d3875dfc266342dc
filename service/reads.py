"""Cached reads of study state (MLflow through :class:`study.records.StudyStore`).

A study in a terminal state (finished, failed, cancelled) never changes again, so its record,
progress, trials, summary and plots are kept for good; those of a queued or running study for
``ttl_s`` seconds. Reading MLflow (SQLite or HTTP) costs tens of milliseconds a call; the
cache is what keeps ``GET /studies/{id}`` and ``/summary`` fast under load (bench/api_load.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import PlotNotFoundError, TrackingUnavailableError
from study.errors import HprobustError, StudyNotFoundError
from study.ids import STUDY_ID_RE
from study.vocab import ENDED, PlotName

T = TypeVar("T")


def _unavailable(exc: Exception) -> bool:
    """Whether ``exc`` means the tracking store cannot be reached (rather than a bug)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ConnectionError", "OperationalError", "TimeoutError", "MaxRetryError"}:
        return True
    text = str(exc)
    return "API request to" in text and "failed" in text


class StudyReader:
    """The read side of a :class:`~study.records.StudyStore`, cached (see the module doc)."""

    def __init__(self, store: Any, *, ttl_s: float = 2.0, enabled: bool = True) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.enabled = enabled
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a store call, reads or writes) with an unreachable MLflow raised as
        TrackingUnavailableError (503)."""
        return self._call(fn, *args)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except (HprobustError, LookupError):
            raise
        except Exception as exc:
            if _unavailable(exc):
                raise TrackingUnavailableError(f"MLflow is not reachable: {exc}") from exc
            raise

    def _cached(self, key: tuple[str, ...], load: Callable[[], T], *, forever: bool) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        expires = float("inf") if forever else now + self.ttl_s
        self._put(key, expires, value)
        return value

    def peek(self, key: tuple[str, ...]) -> Any | None:
        """The cached value of ``key`` if fresh, else None (never reads MLflow)."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def remember(self, key: tuple[str, ...], value: Any, *, study_id: str) -> Any:
        """Cache ``value`` (e.g. a rendered response) for as long as ``study_id`` stays as is:
        for good once it has ended, else ``ttl_s``."""
        record = self.get(study_id)
        forever = record.status in ENDED
        self._put(key, float("inf") if forever else time.monotonic() + self.ttl_s, value)
        return value

    def _put(self, key: tuple[str, ...], expires: float, value: Any) -> None:
        if self.enabled:
            with self._lock:
                self._cache[key] = (expires, value)

    def invalidate(self, study_id: str | None = None) -> None:
        """Forget what is cached about ``study_id`` (every study when None)."""
        with self._lock:
            if study_id is None:
                self._cache.clear()
            else:
                for key in [k for k in self._cache if study_id in k or k == ("list",)]:
                    del self._cache[key]

    # -- reads ------------------------------------------------------------------------------
    def get(self, study_id: str) -> Any:
        """The StudyRecord of ``study_id``; StudyNotFoundError for an unknown or malformed id."""
        if not isinstance(study_id, str) or not STUDY_ID_RE.match(study_id):
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        key = ("record", study_id)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = self._call(self.store.get, study_id)
        forever = record.status in ENDED
        self._put(key, float("inf") if forever else now + self.ttl_s, record)
        return record

    def list(self) -> list[Any]:
        return self._cached(("list",), lambda: self._call(self.store.list), forever=False)

    def progress(self, study_id: str) -> dict[str, int]:
        record = self.get(study_id)
        return self._cached(
            ("progress", study_id),
            lambda: self._call(self.store.progress, study_id),
            forever=record.status in ENDED,
        )

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        record = self.get(study_id)
        return self._cached(
            ("trials", study_id),
            lambda: self._call(self.store.trials, study_id),
            forever=record.status in ENDED,
        )

    def summary(self, study_id: str) -> dict[str, Any]:
        record = self.get(study_id)
        key = ("summary", study_id)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        summary = self._call(self.store.summary, study_id)
        forever = record.status in ENDED and not summary.get("partial")
        self._put(key, float("inf") if forever else now + self.ttl_s, summary)
        return summary

    def plot(self, study_id: str, stem: str) -> bytes:
        record = self.get(study_id)
        if not PlotName.has(stem):
            raise PlotNotFoundError(f"plot must be one of {', '.join(PlotName)}, got {stem!r}")
        key = ("plot", study_id, stem)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            data = self._call(self.store.plot, study_id, stem)
        except StudyNotFoundError:
            raise
        except LookupError as exc:
            raise PlotNotFoundError(
                f"study {study_id} has no plot {stem!r} yet (status {record.status}): {exc}"
            ) from exc
        expires = float("inf") if record.status in ENDED else time.monotonic() + 30
        self._put(key, expires, data)
        return data
