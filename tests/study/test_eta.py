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


def _row(arm: str, status: str = "finished", duration_s: float | None = None) -> dict:
    return {"arm": arm, "status": status, "duration_s": duration_s}


def test_arm_eta_takes_each_arm_at_its_own_pace():
    """Issue 23: a study said 308 s at the start and took 475 s: the fast arm's trials set the
    pace of the slow arm's too. Hand-worked, two arms of 6 trials, two at a time: sgd trials
    take 10 s, insgd 40 s."""
    from study.eta import arm_eta

    planned = {"sgd": 6, "insgd": 6}
    sgd_done = [_row("sgd", duration_s=10.0)] * 6
    # every sgd trial done, no insgd trial finished: insgd at sgd's pace, 6 x 10 / 2
    assert arm_eta(sgd_done, planned, slots=2) == 30.0
    # insgd's first two took 40 s: 4 left x 40 / 2 = 80 s (the whole study's pace of
    # (60 + 80) / 8 = 17.5 s a trial would say 35 s)
    two = [_row("insgd", duration_s=40.0)] * 2
    assert arm_eta(sgd_done + two, planned, slots=2) == 80.0
    # two more running (counted half done): (2 + 2 x 0.5) x 40 / 2 = 60 s
    running = [_row("insgd", "running")] * 2
    assert arm_eta(sgd_done + two + running, planned, slots=2) == 60.0
    # a failed trial is done (not run again) but sets no pace; a stopped one is to run again
    rows = [
        _row("sgd", duration_s=10.0),
        _row("sgd", "failed", 1.0),
        _row("sgd", "stopped", 5.0),
        _row("insgd", "early_stopped", 20.0),
    ]
    # sgd: 6 - 2 ended = 4 x 10 = 40; insgd: 5 x 20 = 100; (40 + 100) / 4 slots = 35
    assert arm_eta(rows, planned, slots=4) == 35.0
    assert arm_eta([_row("sgd", "running")], planned, slots=2) is None  # no pace yet
    assert arm_eta(sgd_done, {"sgd": 6}, slots=2) == 0.0  # nothing left


def test_api_eta_is_arm_by_arm_with_the_spec_and_the_rows():
    """The API's eta_s (GET /studies/{id}: the record has its spec) uses arm_eta, as many
    trials at a time as run now; a listing (no rows) keeps the segment's pace."""
    from service.present import eta_seconds
    from study.records.layout import StudyRecord

    now = datetime.now(UTC)
    spec = {"arms": [{"name": "sgd"}, {"name": "insgd"}], "resources": {}}
    record = StudyRecord(
        id="s20260101-120000-abcdef", name="r", status="running",
        created_at=None, started_at=(now - timedelta(seconds=60)).isoformat(), finished_at=None,
        experiment_id="1", spec=spec, num_classes=10, total_trials=12,
        segment_started_at=(now - timedelta(seconds=60)).isoformat(), segment_done=0,
    )  # fmt: skip
    rows = [_row("sgd", duration_s=10.0)] * 6 + [_row("insgd", duration_s=40.0)] * 2
    rows += [_row("insgd", "running")] * 2
    progress = {"total": 12, "pending": 2, "running": 2}
    assert eta_seconds(record, progress, rows) == 60.0  # as hand-worked above
    by_pace = eta_seconds(record, progress)  # 8 ended in ~60 s, 4 left: ~30 s
    assert by_pace is not None and 25 < by_pace < 35
    ended = StudyRecord(**{**record.__dict__, "status": "finished"})
    assert eta_seconds(ended, progress, rows) is None
