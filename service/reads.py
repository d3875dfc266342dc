"""Cached reads of study state (MLflow through :class:`study.records.store.StudyStore`).

A study that has ended (``study.vocab.ENDED``) never changes again, so its record, progress,
trials, summary, plots and rendered answers are kept for good; those of a queued or running
study for ``ttl_s`` seconds. Reading MLflow (SQLite or HTTP) costs tens of milliseconds a call;
the cache is what keeps ``GET /studies/{id}`` and ``/summary`` fast under load
(bench/api_load.py).

Every read but :meth:`StudyReader.get` takes the study's record, read once per request by the
caller: a request reads the record once, not once per part it shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from service.errors import PlotNotFoundError, TrackingUnavailableError
from study.errors import HprobustError, StudyNotFoundError
from study.faults import classify
from study.records.ids import STUDY_ID_RE
from study.vocab import ENDED, PlotName

T = TypeVar("T")

#: How long a plot of a live study is kept (it appears once, when the study finishes).
PLOT_TTL_S = 30.0


def ended(record: Any) -> bool:
    """Whether the study of ``record`` has ended (what is read of it is then final)."""
    return record.status in ENDED


class TTLCache:
    """Values that expire each at its own time, or never (``forever``); thread-safe.

    Not :class:`cachetools.TTLCache`: that has one lifetime for every entry, and an ended
    study's entries must outlive a live study's.
    """

    def __init__(self, ttl_s: float, *, enabled: bool = True) -> None:
        self.ttl_s = ttl_s
        self.enabled = enabled
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value of ``key`` while it is fresh, else None."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: Hashable, value: T, *, forever: bool, ttl_s: float | None = None) -> T:
        """Keep ``value`` for good (``forever``) or ``ttl_s`` seconds (default: the cache's)."""
        if self.enabled:
            expires = float("inf") if forever else time.monotonic() + (ttl_s or self.ttl_s)
            with self._lock:
                self._entries[key] = (expires, value)
        return value

    def load(
        self, key: Hashable, read: Callable[[], T], *, forever: Callable[[T], bool] | bool
    ) -> T:
        """The fresh value of ``key``, else ``read()``, kept for good if ``forever`` (or
        ``forever(value)``) holds."""
        value = self.get(key)
        if value is None:
            value = read()
            self.put(key, value, forever=forever(value) if callable(forever) else forever)
        return value

    def drop(self, keep: Callable[[Hashable], bool] | None = None) -> None:
        """Forget every entry (or those ``keep`` does not keep)."""
        with self._lock:
            if keep is None:
                self._entries.clear()
            else:
                self._entries = {k: v for k, v in self._entries.items() if keep(k)}


class StudyReader:
    """The read side of a :class:`~study.records.store.StudyStore`, cached (see the module doc)."""

    def __init__(self, store: Any, *, ttl_s: float = 2.0, enabled: bool = True) -> None:
        self.store = store
        self.cache = TTLCache(ttl_s, enabled=enabled)

    # -- plumbing ---------------------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a store call, reads or writes) with an unreachable MLflow raised as
        TrackingUnavailableError (503)."""
        try:
            return fn(*args)
        except (HprobustError, LookupError):
            raise
        except Exception as exc:
            if classify(exc) is not None:  # study.faults: a fault that heals
                raise TrackingUnavailableError(f"MLflow is not reachable: {exc}") from exc
            raise

    def peek(self, key: tuple[str, ...]) -> Any | None:
        """The cached value of ``key`` if fresh, else None (never reads MLflow)."""
        return self.cache.get(key)

    def remember(self, key: tuple[str, ...], value: T, *, record: Any) -> T:
        """Cache ``value`` (e.g. a rendered answer) for as long as the study of ``record``
        stays as is: for good once it has ended, else ``ttl_s``."""
        return self.cache.put(key, value, forever=ended(record))

    def invalidate(self, study_id: str | None = None) -> None:
        """Forget what is cached about ``study_id`` (every study when None)."""
        if study_id is None:
            self.cache.drop()
        else:
            self.cache.drop(keep=lambda k: study_id not in k and k != ("list",))

    # -- reads ------------------------------------------------------------------------------
    def get(self, study_id: str) -> Any:
        """The StudyRecord of ``study_id``; StudyNotFoundError for an unknown or malformed id."""
        if not isinstance(study_id, str) or not STUDY_ID_RE.fullmatch(study_id):
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        return self.cache.load(
            ("record", study_id), lambda: self.call(self.store.get, study_id), forever=ended
        )

    def list(self) -> list[Any]:
        """Every study's state (no spec: a listing shows none), newest first."""
        return self.cache.load(("list",), lambda: self.call(self.store.states), forever=False)

    def progress(self, record: Any) -> dict[str, int]:
        return self.cache.load(
            ("progress", record.id),
            lambda: self.call(self.store.progress, record.id),
            forever=ended(record),
        )

    def trials(self, record: Any) -> list[dict[str, Any]]:
        return self.cache.load(
            ("trials", record.id),
            lambda: self.call(self.store.trials, record.id),
            forever=ended(record),
        )

    def summary(self, record: Any) -> dict[str, Any]:
        """The summary (a partial one, never kept for good, until the study finishes)."""
        return self.cache.load(
            ("summary", record.id),
            lambda: self.call(self.store.summary, record.id),
            forever=lambda summary: ended(record) and not summary.get("partial"),
        )

    def plot_names(self, record: Any) -> list[PlotName]:
        """The plots the study has stored, in report order (listed, not downloaded)."""
        return self.cache.load(
            ("plot_names", record.id),
            lambda: self.call(self.store.plot_names, record.id),
            forever=ended(record),
        )

    def plot(self, record: Any, stem: str) -> bytes:
        """PNG bytes of the study's plot ``stem``; PlotNotFoundError if it has none (yet)."""
        if not PlotName.has(stem):
            raise PlotNotFoundError(f"plot must be one of {', '.join(PlotName)}, got {stem!r}")
        key = ("plot", record.id, stem)
        data = self.cache.get(key)
        if data is None:
            try:
                data = self.call(self.store.plot, record.id, stem)
            except StudyNotFoundError:
                raise
            except LookupError as exc:
                raise PlotNotFoundError(
                    f"study {record.id} has no plot {stem!r} yet (status {record.status}): {exc}"
                ) from exc
            self.cache.put(key, data, forever=ended(record), ttl_s=PLOT_TTL_S)
        return data
