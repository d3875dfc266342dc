"""Faults that heal, told apart from real failures: the one classifier of errors that mean the
disk is full or a server (MLflow's store, a tracking server, Ray) cannot be reached now.

:func:`classify` is used by the study store (a failed write answers StoreFullError or
StoreUnavailableError: :func:`store_error`), by the study driver (such a fault does not fail
the study: the driver exits :data:`EXIT_TRANSIENT` and the service resubmits it with
``--resume`` once the fault has cleared) and by the service's reads (503, not 500).
docs/design.md "Reliability rules" says why. Importing this module imports only the standard
library and :mod:`study.bounded`.
"""

from __future__ import annotations

import enum
import errno

from study.bounded import preview

#: The driver's exit code for a fault that heals (``EX_TEMPFAIL`` of sysexits.h).
EXIT_TRANSIENT = 75


class Fault(enum.StrEnum):
    """What kind of fault heals (the values are the words the driver's last line uses)."""

    FULL = "disk full"
    UNAVAILABLE = "unreachable"


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Lowercase fragments of the messages SQLite, PostgreSQL, MLflow (file stores and tracking
#: servers) and the OS give for a full disk.
FULL_TEXT = (
    "no space left on device",
    "database or disk is full",
    "disk quota exceeded",
    "disk full",
    "diskfull",
)
#: Exception class names that mean a full disk: PostgreSQL's ``disk_full`` (SQLSTATE 53100).
FULL_CLASSES = frozenset({"DiskFull"})
#: Exception class names (anywhere in an exception's class hierarchy) that mean a server
#: cannot be reached or cannot serve now: the builtins', urllib3's (MaxRetryError,
#: NewConnectionError is a TimeoutError there), requests' ConnectionError, and the DB-API's
#: OperationalError (sqlite3, psycopg2, SQLAlchemy: "errors related to the database's
#: operation", PEP 249: a lock, a lost connection, a pool exhausted).
UNAVAILABLE_CLASSES = frozenset(
    {"ConnectionError", "TimeoutError", "MaxRetryError", "OperationalError"}
)
#: Lowercase fragments of the messages of a server that cannot be reached or is busy.
UNAVAILABLE_TEXT = (
    "connection refused",
    "connection reset by peer",
    "remote end closed connection",
    "failed to establish a new connection",
    "max retries exceeded",
    "could not connect",
    "name or service not known",
    "temporary failure in name resolution",
    "timed out",
    "database is locked",
    "queuepool limit",
    "failed to connect to all addresses",
    "gcs is not available",
    "unable to connect to gcs",
)


def exception_chain(exc: BaseException, limit: int = 50) -> list[BaseException]:
    """``exc`` and every exception it was raised from or while handling (``__cause__`` and
    ``__context__``, each followed), each once, at most ``limit``."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an MLflow error carries (a tracking server's answer), if any."""
    get = getattr(exc, "get_http_status_code", None)
    try:
        status = get() if callable(get) else None
    except Exception:  # an error without a known code
        return None
    return status if isinstance(status, int) else None


def classify(exc: BaseException, *, writing: bool = False) -> Fault | None:
    """:attr:`Fault.FULL`, :attr:`Fault.UNAVAILABLE` or None (a real failure) for ``exc``,
    looking through every exception it was raised from.

    - The store's own StoreFullError and StoreUnavailableError anywhere in the chain say so.
    - Any other error hprobust raises on purpose (:class:`~study.errors.HprobustError`: a bad
      spec, a missing dataset that cannot be downloaded) is no fault that heals, whatever it
      was raised from.
    - Full: an OSError with errno ENOSPC or EDQUOT, a class of :data:`FULL_CLASSES`, or a
      message of :data:`FULL_TEXT`.
    - Unavailable: a class of :data:`UNAVAILABLE_CLASSES`, a message of
      :data:`UNAVAILABLE_TEXT`, MLflow's ``API request to ... failed`` (its client gave up
      retrying), or a tracking server's answer with an HTTP status of 500 or more.
    - ``writing``: ``exc`` came from a write to the study store; then any OSError (an artifact
      store that cannot be written: permissions, a missing mount) is the store unavailable.

    Full wins over unavailable when both show (a server that fails because its disk is full).
    """
    from study.errors import HprobustError, StoreFullError, StoreUnavailableError

    chain = exception_chain(exc)
    for item in chain:
        if isinstance(item, StoreFullError):
            return Fault.FULL
        if isinstance(item, StoreUnavailableError):
            return Fault.UNAVAILABLE
    if isinstance(exc, HprobustError):
        return None
    texts = [str(item).lower() for item in chain]
    for item, text in zip(chain, texts, strict=True):
        if isinstance(item, OSError) and item.errno in _FULL_ERRNOS:
            return Fault.FULL
        if {cls.__name__ for cls in type(item).__mro__} & FULL_CLASSES:
            return Fault.FULL
        if any(fragment in text for fragment in FULL_TEXT):
            return Fault.FULL
    for item, text in zip(chain, texts, strict=True):
        names = {cls.__name__ for cls in type(item).__mro__}
        if names & UNAVAILABLE_CLASSES or (writing and isinstance(item, OSError)):
            return Fault.UNAVAILABLE
        if any(fragment in text for fragment in UNAVAILABLE_TEXT):
            return Fault.UNAVAILABLE
        if "api request to" in text and "failed" in text:
            return Fault.UNAVAILABLE
        status = _http_status(item)
        if status is not None and status >= 500:
            return Fault.UNAVAILABLE
    return None


def store_error(exc: BaseException) -> Exception | None:
    """The error to answer for a failed write to the study store: StoreFullError (no space
    left), StoreUnavailableError (unreachable, busy, or an artifact store that cannot be
    written), or None (something else: a bug, raised as is). Either says nothing was
    recorded."""
    from study.errors import StoreFullError, StoreUnavailableError

    for item in exception_chain(exc):
        if isinstance(item, StoreFullError | StoreUnavailableError):
            return item
    fault = classify(exc, writing=True)
    if fault is Fault.FULL:
        return StoreFullError(
            "the study store has no space left (nothing was recorded; free space, then send "
            f"the request again): {preview(str(exc), limit=300)}"
        )
    if fault is Fault.UNAVAILABLE:
        return StoreUnavailableError(
            "the study store cannot be written now (nothing was recorded; try again): "
            f"{preview(str(exc), limit=300)}"
        )
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
