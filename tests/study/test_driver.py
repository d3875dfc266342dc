"""The warm driver's wait for its study (``study.driver.await_study``): what each read of the
store tells it. The store here is a script of what MLflow answered (the wait itself, its
polls and its deadline, is the code under test); the warm driver as a whole, against a real
Ray head and a real store, is tested in ``tests/service/test_warm_driver.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from study.driver import STANDBY_POLL_HTTP_S, STANDBY_POLL_S, await_study, standby_poll_s
from study.errors import StoreUnavailableError, StudyNotFoundError


class Script:
    """A store whose ``state`` gives, read after read, the next of ``answers`` (an exception
    is raised), and counts the reads."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.reads = 0

    def state(self, study_id: str) -> Any:
        self.reads += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def ticking(step: float) -> Callable[[], float]:
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_the_study_is_found_after_reads_that_find_nothing_or_fail_for_a_while() -> None:
    store = Script(
        StudyNotFoundError("no study"),
        StoreUnavailableError("MLflow unreachable"),  # down for a moment: read again
        StudyNotFoundError("no study"),
        {"status": "queued"},
    )
    assert await_study(store, "s1", deadline=100.0, poll_s=0.001, clock=ticking(1.0))
    assert store.reads == 4


def test_no_study_by_the_deadline_is_false_and_stops_reading() -> None:
    store = Script(*[StudyNotFoundError("no study")] * 10)
    clock = lambda: float(store.reads)  # noqa: E731  (each read takes a second)
    assert not await_study(store, "s1", deadline=3.0, poll_s=0.001, clock=clock)
    assert store.reads == 3  # its third read ends at the deadline: no fourth


def test_an_error_that_is_no_passing_fault_is_raised() -> None:
    store = Script(StudyNotFoundError("no study"), ValueError("a broken record"))
    with pytest.raises(ValueError, match="a broken record"):
        await_study(store, "s1", deadline=100.0, poll_s=0.001, clock=ticking(1.0))


def test_a_tracking_server_is_read_less_often_than_a_database() -> None:
    assert standby_poll_s("sqlite:////data/mlflow.db") == STANDBY_POLL_S
    assert standby_poll_s("postgresql://mlflow@db/mlflow") == STANDBY_POLL_S
    assert standby_poll_s("HTTPS://mlflow.lab:5000") == STANDBY_POLL_HTTP_S > STANDBY_POLL_S
