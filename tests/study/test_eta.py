"""The ETA of the CLI's progress lines: the pace of recent trials, on hand-worked timelines."""

from __future__ import annotations

import doctest

import pytest

import study.eta
from study.eta import Eta, format_duration


def test_doctests():
    assert doctest.testmod(study.eta).failed == 0


def test_bursts_do_not_make_the_estimate_jump():
    """Two trials end together every 10 s (two at a time): the estimate falls by 10 s per
    burst, as the work left does, instead of swinging between bursts."""
    eta = Eta(total=20, window=6)
    assert eta.update(0, now=0.0) is None
    estimates = [eta.update(2 * k, now=10.0 * k) for k in range(1, 10)]
    assert estimates == pytest.approx([90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0, 10.0])


def test_the_pace_is_that_of_the_last_window_of_trials():
    """A slow start (1 trial in 100 s) is forgotten once `window` faster trials have ended."""
    eta = Eta(total=10, window=3)
    eta.update(0, now=0.0)
    assert eta.update(1, now=100.0) == 900.0
    for done, t in ((2, 110.0), (3, 120.0), (4, 130.0)):
        last = eta.update(done, now=t)
    assert last == 60.0  # trials 2-4 took 10 s each (from trial 1 at 100 s): 6 left


def test_resumed_study_starts_from_what_was_done():
    """A resumed study already has 11 of 20 done: no estimate until one more ends."""
    eta = Eta(total=20)
    assert eta.update(11, now=5.0) is None
    assert eta.update(12, now=15.0) == 80.0


def test_nothing_left():
    eta = Eta(total=4)
    eta.update(0, now=0.0)
    assert eta.update(4, now=8.0) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0 s"), (44.6, "45 s"), (89, "89 s"), (90, "2 min"), (3600, "60 min"),
     (5400, "1.5 h")],
)  # fmt: skip
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
