"""The ETA of the CLI's progress lines: the pace of recent trials, on hand-worked timelines."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import pytest

import study.eta
from study.eta import Eta, format_duration, study_eta


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


# ---- the API's ETA of a running study (study.eta.study_eta) --------------------------------

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_study_eta_right_after_a_resume_says_nothing():
    """Issue 10: a study resumed with 9 of 20 trials ended said "0.6 s" for the 11 left
    (the time since the restart divided over trials done before it). Until a trial ends
    since the restart there is no estimate; then the pace is that of the trials since."""
    progress = {"total": 20, "pending": 9, "running": 2, "finished": 8, "failed": 1}
    args = {"status": "running", "started_at": T0.isoformat(), "done_at_start": 9}
    assert study_eta(**args, progress=progress, now=_at(0.5)) is None
    assert study_eta(**args, progress=progress, now=_at(3600)) is None
    one_more = {**progress, "pending": 8, "finished": 9}  # 10 ended, 10 left, 1 in 60 s
    assert study_eta(**args, progress=one_more, now=_at(60)) == 600.0


def test_study_eta_of_a_first_run_and_of_an_old_record():
    """No trial done at the start (or a record from before segments: None) -> all count."""
    progress = {"total": 10, "pending": 5, "running": 1}  # 4 ended, 6 left
    for done_at_start in (0, None):
        eta = study_eta(
            status="running", started_at=T0.isoformat(), done_at_start=done_at_start,
            progress=progress, now=_at(40),
        )  # fmt: skip
        assert eta == 60.0


@pytest.mark.parametrize("status", ["queued", "finished", "failed", "cancelled"])
def test_study_eta_only_while_running(status):
    progress = {"total": 10, "pending": 5, "running": 1}
    assert study_eta(status=status, started_at=T0.isoformat(), done_at_start=0,
                     progress=progress, now=_at(40)) is None  # fmt: skip
    assert study_eta(status="running", started_at=None, done_at_start=0,
                     progress=progress, now=_at(40)) is None  # fmt: skip


def test_api_eta_uses_the_segment_of_the_record():
    """The API's eta_s reads the segment a hand-built record carries (a resumed study whose
    first start was long ago: the old start must not count)."""
    from service.present import eta_seconds
    from study.records.layout import StudyRecord

    now = datetime.now(UTC)
    record = StudyRecord(
        id="s20260101-120000-abcdef", name="r", status="running",
        created_at=None, started_at=(now - timedelta(days=1)).isoformat(), finished_at=None,
        experiment_id="1", spec={}, num_classes=10, total_trials=20,
        segment_started_at=(now - timedelta(seconds=2)).isoformat(), segment_done=9,
    )  # fmt: skip
    assert eta_seconds(record, {"total": 20, "pending": 9, "running": 2}) is None
    eta = eta_seconds(record, {"total": 20, "pending": 8, "running": 2})
    assert eta is not None and 0 < eta < 3600  # 1 trial since ~2 s ago: ~20 s, not a day
