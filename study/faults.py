"""Faults that heal: what a study driver tells apart from a real failure.

A full disk, an MLflow server or a Ray cluster that is briefly unreachable are *transient*:
the study must not be marked ``failed`` for them (DESIGN.md "Reliability rules"). The driver
exits with :data:`EXIT_TRANSIENT` instead; the service's scheduler resubmits the study with
``--resume`` (with backoff, and only once the fault has cleared) without counting it toward
its ``max_attempts``.

Importing this module imports only the standard library.
"""

from __future__ import annotations

import errno

from study.bounded import preview

#: The driver's exit code for a fault that heals (``EX_TEMPFAIL`` of sysexits.h).
EXIT_TRANSIENT = 75

_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Lowercase fragments of the messages that SQLite, MLflow, gRPC and HTTP clients give for a
#: full disk or an unreachable server.
_DISK_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")
_UNREACHABLE_TEXT = (
    "connection refused",
    "max retries exceeded",
    "failed to establish a new connection",
    "connection reset by peer",
    "remote end closed connection",
    "name or service not known",
    "temporary failure in name resolution",
    "failed to connect to all addresses",
    "gcs is not available",
    "unable to connect to gcs",
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 50:
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def transient_fault(exc: BaseException) -> str | None:
    """``"disk full"`` or ``"unreachable"`` if ``exc`` (or an exception it was raised from)
    is a fault that heals; None for any other error. An error hprobust raises on purpose
    (:class:`~study.errors.HprobustError`: a missing dataset that cannot be downloaded, a bad
    spec) is never one, whatever it was raised from, but the study store's own
    StoreFullError and StoreUnavailableError are."""
    from study.errors import HprobustError, StoreFullError, StoreUnavailableError

    if isinstance(exc, StoreFullError):
        return "disk full"
    if isinstance(exc, StoreUnavailableError):
        return "unreachable"
    if isinstance(exc, HprobustError):
        return None
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno in _DISK_ERRNOS:
            return "disk full"
        text = str(item).lower()
        if any(fragment in text for fragment in _DISK_TEXT):
            return "disk full"
    for item in _chain(exc):
        if isinstance(item, ConnectionError | TimeoutError):
            return "unreachable"
        text = str(item).lower()
        if any(fragment in text for fragment in _UNREACHABLE_TEXT):
            return "unreachable"
    return None


def disk_fault(paths: list[str] | tuple[str, ...], min_free_bytes: int) -> str | None:
    """``"full: <path> has <n> MB free, needs <m> MB ..."`` for the first path (or its nearest
    existing parent) whose file system has less than ``min_free_bytes`` free; None if all
    have enough (or none can be measured)."""
    import shutil
    from pathlib import Path

    for raw in paths:
        path = Path(raw)
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < min_free_bytes:
            mb = 1024 * 1024
            return (
                f"full: {raw} has {free / mb:.1f} MB free, needs {min_free_bytes / mb:.0f} "
                f"MB (HPROBUST_MIN_FREE_MB)"
            )
    return None


# ---- the study store's writes and reads (merged with transient_fault next) ----------------

#: How a full disk shows in the errors of MLflow's stores (SQLite, PostgreSQL, file artifacts,
#: a tracking server's answer).
_FULL = ("no space left on device", "database or disk is full", "disk full", "diskfull")
#: How a store that cannot take a write now (unreachable or overloaded) shows.
_UNAVAILABLE = (
    "queuepool limit",
    "database is locked",
    "connection refused",
    "could not connect",
    "max retries exceeded",
    "timed out",
)


def store_write_error(exc: BaseException) -> Exception | None:
    """The error to answer for a failed write to the study store: StoreFullError (no space
    left: errno ENOSPC anywhere in the chain, or the store's message saying so),
    StoreUnavailableError (unreachable, busy, or an artifact store that cannot be written),
    or None (something else: a bug, raised as is)."""
    from study.errors import StoreFullError, StoreUnavailableError

    seen = _store_chain(exc)
    if any(isinstance(e, StoreFullError | StoreUnavailableError) for e in seen):
        return next(e for e in seen if isinstance(e, StoreFullError | StoreUnavailableError))
    text = " ".join(str(e) for e in seen).lower()
    if any(getattr(e, "errno", None) == errno.ENOSPC for e in seen) or any(
        word in text for word in _FULL
    ):
        return StoreFullError(
            "the study store has no space left (nothing was recorded; free space, then send "
            f"the request again): {preview(str(exc), limit=300)}"
        )
    names = {cls.__name__ for e in seen for cls in type(e).__mro__}
    unreachable = {"ConnectionError", "OperationalError", "TimeoutError", "MaxRetryError"}
    # OSError: an artifact store that cannot be written (permissions, a missing mount)
    if names & (unreachable | {"OSError"}) or any(word in text for word in _UNAVAILABLE):
        return StoreUnavailableError(
            "the study store cannot be written now (nothing was recorded; try again): "
            f"{preview(str(exc), limit=300)}"
        )
    return None


def _store_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the store cannot be reached or is busy (not
    that what was asked for is missing)."""
    seen = _store_chain(exc)
    names = {cls.__name__ for e in seen for cls in type(e).__mro__}
    text = " ".join(str(e) for e in seen).lower()
    unreachable = {"ConnectionError", "TimeoutError", "MaxRetryError", "OperationalError"}
    if names & unreachable or any(word in text for word in _UNAVAILABLE):
        return True
    return "api request to" in text and "failed" in text
