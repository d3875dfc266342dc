"""Which errors are faults that heal (the study driver exits 75 and its study waits) and when
the data dir counts as full."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from study.errors import DatasetNotFoundError, StoreFullError, StoreUnavailableError
from study.faults import disk_fault, transient_fault


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


def test_a_full_disk_is_a_fault_that_heals_however_deep_it_is_wrapped() -> None:
    assert transient_fault(OSError(errno.ENOSPC, "No space left on device")) == "disk full"
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    wrapped = raised_from(RuntimeError("(raised as a result of autoflush)"), sqlite_full)
    assert transient_fault(raised_from(RuntimeError("TuneError"), wrapped)) == "disk full"


def test_an_unreachable_server_is_a_fault_that_heals() -> None:
    assert transient_fault(ConnectionRefusedError(111, "Connection refused")) == "unreachable"
    text = "API request to http://mlflow:5000/api/2.0/... failed: Max retries exceeded with url"
    assert transient_fault(RuntimeError(text)) == "unreachable"
    assert transient_fault(StoreUnavailableError("the study store is busy")) == "unreachable"
    assert transient_fault(StoreFullError(errno.ENOSPC, "the store is full")) == "disk full"


def test_other_errors_are_not() -> None:
    assert transient_fault(ValueError("lr must be > 0")) is None
    assert transient_fault(RuntimeError("CUDA error: an illegal memory access")) is None
    offline = raised_from(
        DatasetNotFoundError("cifar10 is missing and cannot be downloaded"),
        OSError("Temporary failure in name resolution"),
    )
    assert transient_fault(offline) is None  # a missing dataset stays missing


def test_the_data_dir_is_full_below_the_threshold(tmp_path: Path) -> None:
    assert disk_fault([str(tmp_path)], 0) is None
    message = disk_fault([str(tmp_path / "not" / "made" / "yet")], 1 << 62)
    assert message is not None
    assert message.startswith(f"full: {tmp_path / 'not' / 'made' / 'yet'} has ")
    assert "MB free, needs" in message and "HPROBUST_MIN_FREE_MB" in message
