"""study.tune.batching: a trial's epochs reach the driver at most once per ``every_s``, the
last (or a diverged) epoch at once, and whatever is kept when the training loop ends or fails."""

from __future__ import annotations

import doctest

import pytest

import study.tune.batching
from study.tune.batching import EPOCHS_KEY, EpochBatches


def test_doctests():
    assert doctest.testmod(study.tune.batching).failed == 0


def test_the_loop_ending_or_failing_sends_what_is_kept():
    sent: list[dict] = []
    with EpochBatches(sent.append, every_s=60.0, last_epoch=9) as report:
        report({"epoch": 1})
        report({"epoch": 2})
    assert sent == [{"epoch": 2, EPOCHS_KEY: [{"epoch": 1}]}]  # the loop ended: sent

    sent.clear()
    failing = EpochBatches(sent.append, every_s=60.0, last_epoch=9)
    with pytest.raises(ValueError, match="the loop's own"), failing as report:
        report({"epoch": 1})
        raise ValueError("the loop's own error")
    assert sent == [{"epoch": 1}]  # the epochs it ran still reach the records

    def broken(result: dict) -> None:
        raise ConnectionError("the driver is gone")

    failing = EpochBatches(broken, every_s=60.0, last_epoch=9)
    with pytest.raises(ValueError, match="the loop's own"), failing as report:  # not the send's
        report({"epoch": 1})
        raise ValueError("the loop's own error")
