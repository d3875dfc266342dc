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
