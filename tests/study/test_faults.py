"""The one fault classifier (study.faults.classify) over one table of real exceptions: what the
store, the driver and the service's reads see when a disk fills or a server is away, and what
they must not take for a fault that heals. Also when the data dir counts as full."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from study.errors import (
    DatasetNotFoundError,
    SpecError,
    StoreFullError,
    StoreUnavailableError,
    StudyNotFoundError,
)
from study.faults import Fault, classify, disk_fault, exception_chain, store_error

FULL, UNAVAILABLE = Fault.FULL, Fault.UNAVAILABLE


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised ``from inner`` (its ``__cause__``)."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


def raised_while(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised while handling ``inner`` (its ``__context__`` only)."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 (the implicit chain is the point)
    except BaseException as exc:
        return exc


def sqlalchemy_error(orig: BaseException) -> BaseException:
    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT INTO runs (run_uuid) VALUES (?)", {}, orig)


def max_retries() -> BaseException:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return MaxRetryError(None, "/api/2.0/mlflow/runs/create", reason)


def requests_connection_error() -> BaseException:
    import requests

    return requests.exceptions.ConnectionError(max_retries())


def requests_read_timeout() -> BaseException:
    import requests

    return requests.exceptions.ReadTimeout(
        "HTTPConnectionPool(host='mlflow', port=5000): Read timed out. (read timeout=120)"
    )


def mlflow_gave_up() -> BaseException:
    from mlflow.exceptions import MlflowException

    return raised_from(
        MlflowException(
            "API request to http://mlflow:5000/api/2.0/mlflow/runs/create failed with exception "
            "HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded with url"
        ),
        requests_connection_error(),
    )


def rest(code: str) -> BaseException:
    from mlflow.exceptions import RestException

    return RestException({"error_code": code, "message": f"the server says {code.lower()}"})


def ray_rpc_unavailable() -> BaseException:
    from ray.exceptions import RpcError

    return RpcError("failed to connect to all addresses", rpc_code=14)


def ray_get_timeout() -> BaseException:
    from ray.exceptions import GetTimeoutError

    return GetTimeoutError("Get timed out: some object(s) not ready.")


def postgres_disk_full() -> BaseException:
    from psycopg2.errors import DiskFull

    return sqlalchemy_error(DiskFull('could not extend file "base/16384/2619"'))


def postgres_refused() -> BaseException:
    import psycopg2

    return sqlalchemy_error(
        psycopg2.OperationalError(
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
        )
    )


def queue_pool_exhausted() -> BaseException:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out")


#: (name, the exception, raised by a write to the study store?, what it is)
FAULTS: list[tuple[str, Callable[[], BaseException], bool, Fault | None]] = [
    # a full disk
    ("errno ENOSPC", lambda: OSError(errno.ENOSPC, "No space left on device"), False, FULL),
    ("errno EDQUOT", lambda: OSError(errno.EDQUOT, "Disk quota exceeded"), False, FULL),
    ("sqlite full", lambda: sqlite3.OperationalError("database or disk is full"), False, FULL),
    (
        "sqlite full under SQLAlchemy under Tune",
        lambda: raised_from(
            RuntimeError("TuneError"),
            raised_from(
                RuntimeError("(raised as a result of autoflush)"),
                sqlalchemy_error(sqlite3.OperationalError("database or disk is full")),
            ),
        ),
        False,
        FULL,
    ),
    ("postgres disk_full", postgres_disk_full, True, FULL),
    ("the store's StoreFullError", lambda: StoreFullError("the store is full"), False, FULL),
    (
        "a server that fails for its full disk",
        lambda: raised_from(ConnectionError("upstream failed"), OSError(errno.ENOSPC, "full")),
        False,
        FULL,
    ),
    # a server away or busy
    ("sqlite locked", lambda: sqlite3.OperationalError("database is locked"), False, UNAVAILABLE),
    (
        "sqlite locked under SQLAlchemy",
        lambda: sqlalchemy_error(sqlite3.OperationalError("database is locked")),
        True,
        UNAVAILABLE,
    ),
    ("postgres refused under SQLAlchemy", postgres_refused, False, UNAVAILABLE),
    ("SQLAlchemy pool exhausted", queue_pool_exhausted, True, UNAVAILABLE),
    ("urllib3 MaxRetryError", max_retries, False, UNAVAILABLE),
    ("requests ConnectionError", requests_connection_error, False, UNAVAILABLE),
    ("requests ReadTimeout", requests_read_timeout, False, UNAVAILABLE),
    ("MLflow client gave up", mlflow_gave_up, False, UNAVAILABLE),
    ("MLflow 503", lambda: rest("TEMPORARILY_UNAVAILABLE"), False, UNAVAILABLE),
    ("MLflow 500", lambda: rest("INTERNAL_ERROR"), False, UNAVAILABLE),
    ("Ray RPC unavailable", ray_rpc_unavailable, False, UNAVAILABLE),
    ("Ray get timed out", ray_get_timeout, False, UNAVAILABLE),
    (
        "Ray GCS away",
        lambda: ConnectionError("Could not connect: GCS is not available at 10.0.0.2:6379"),
        False,
        UNAVAILABLE,
    ),
    (
        "refused, while handling something else",
        lambda: raised_while(KeyError("run"), ConnectionRefusedError(111, "Connection refused")),
        False,
        UNAVAILABLE,
    ),
    (
        "the store's StoreUnavailableError",
        lambda: StoreUnavailableError("busy"),
        False,
        UNAVAILABLE,
    ),
    (
        "an artifact store that cannot be written",
        lambda: PermissionError(errno.EACCES, "Permission denied: '/data/mlartifacts/s1'"),
        True,
        UNAVAILABLE,
    ),
    # real failures
    (
        "the same PermissionError outside a store write",
        lambda: PermissionError(errno.EACCES, "Permission denied: '/data/mlartifacts/s1'"),
        False,
        None,
    ),
    ("a bad value", lambda: ValueError("lr must be > 0"), False, None),
    ("a CUDA error", lambda: RuntimeError("CUDA error: an illegal memory access"), False, None),
    ("a file not found", lambda: FileNotFoundError(errno.ENOENT, "no such file"), False, None),
    ("MLflow 400", lambda: rest("INVALID_PARAMETER_VALUE"), True, None),
    ("MLflow 404", lambda: rest("RESOURCE_DOES_NOT_EXIST"), False, None),
    (
        "a missing dataset, offline",  # it stays missing
        lambda: raised_from(
            DatasetNotFoundError("cifar10 is missing and cannot be downloaded"),
            OSError("Temporary failure in name resolution"),
        ),
        False,
        None,
    ),
    (
        "a bad spec",
        lambda: SpecError([{"field": "lr", "rule": "must be > 0", "value": -1}]),
        False,
        None,
    ),
    (
        "no such study, whatever it was raised from",
        lambda: raised_from(StudyNotFoundError("no study s1"), ConnectionError("refused")),
        False,
        None,
    ),
]


@pytest.mark.parametrize(
    ("make", "writing", "expected"),
    [row[1:] for row in FAULTS],
    ids=[row[0] for row in FAULTS],
)
def test_each_fault_has_its_class(
    make: Callable[[], BaseException], writing: bool, expected: Fault | None
) -> None:
    assert classify(make(), writing=writing) == expected


WRITES = [row for row in FAULTS if row[2]]


@pytest.mark.parametrize(
    ("make", "expected"), [(row[1], row[3]) for row in WRITES], ids=[row[0] for row in WRITES]
)
def test_a_failed_store_write_answers_full_unavailable_or_itself(
    make: Callable[[], BaseException], expected: Fault | None
) -> None:
    """store_error (the store's answer for a write that failed) follows the classifier: a
    StoreFullError or StoreUnavailableError that says nothing was recorded, else None."""
    answer = store_error(make())
    if expected is FULL:
        assert isinstance(answer, StoreFullError) and "no space left" in str(answer)
    elif expected is UNAVAILABLE:
        assert isinstance(answer, StoreUnavailableError)
    else:
        assert answer is None


def test_the_stores_own_errors_pass_through_as_they_are() -> None:
    own = StoreUnavailableError("no turn within 5 s")
    assert store_error(raised_from(RuntimeError("wrapped"), own)) is own


def test_the_driver_quotes_the_class_in_its_last_line() -> None:
    """The words the service shows (``disk full: ...``, ``unreachable: ...``)."""
    assert f"{Fault.FULL}: OSError" == "disk full: OSError"
    assert f"{Fault.UNAVAILABLE}" == "unreachable"


def test_the_chain_is_walked_once_through_causes_and_contexts() -> None:
    inner = ConnectionRefusedError(111, "refused")
    middle = raised_from(RuntimeError("middle"), inner)
    outer = raised_while(KeyError("outer"), middle)
    assert exception_chain(outer) == [outer, middle, inner]
    loop = RuntimeError("a")
    other = RuntimeError("b")
    loop.__cause__, other.__cause__ = other, loop  # a cycle ends the walk
    assert exception_chain(loop) == [loop, other]


def test_the_data_dir_is_full_below_the_threshold(tmp_path: Path) -> None:
    assert disk_fault([str(tmp_path)], 0) is None
    message = disk_fault([str(tmp_path / "not" / "made" / "yet")], 1 << 62)
    assert message is not None
    assert message.startswith(f"full: {tmp_path / 'not' / 'made' / 'yet'} has ")
    assert "MB free, needs" in message and "HPROBUST_MIN_FREE_MB" in message
