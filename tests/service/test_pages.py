"""The progress block of the index and report pages, on hand-made study states."""

from __future__ import annotations

import pytest

from service.pages import progress_view
from service.schemas import Links, Progress, StudyPublic


def study(status: str, eta_s: float | None = None, **counts: int) -> StudyPublic:
    progress = {"finished": 0, "running": 0, "pending": 0, "diverged": 0, "failed": 0, **counts}
    progress.setdefault("total", 0)
    links = Links(
        self="/s", trials="/t", summary="/m", report="/r", cancel="/c", resume="/u", plots={}
    )
    return StudyPublic(
        id="s20990101-000000-abcdef",
        name="x",
        status=status,
        created_at=None,
        started_at=None,
        finished_at=None,
        progress=Progress(**progress),
        total_trials=progress["total"],
        num_classes=10,
        experiment_id="1",
        eta_s=eta_s,
        links=links,
    )


@pytest.mark.parametrize(
    ("state", "percent", "text"),
    [
        (
            study("running", eta_s=150, finished=3, diverged=1, running=2, pending=3, total=8),
            37.5,
            "3 of 8 finished · 1 diverged · 2 running · 3 to go · about 2 min left",
        ),
        (study("queued", pending=4, total=4), 0.0, "0 of 4 finished · 4 to go"),
        (study("finished", finished=7, failed=1, total=8), 100.0, "7 of 8 finished · 1 failed"),
        # A cancelled study whose store still says 2 running: no stale running/pending counts.
        (
            study("cancelled", finished=2, running=2, pending=4, total=8),
            25.0,
            "2 of 8 finished · 6 never ran",
        ),
        (study("failed", failed=3, total=3), 100.0, "0 of 3 finished · 3 failed"),
        (study("running", total=0), 0.0, "0 of 0 finished"),
    ],
)
def test_progress_view(state: StudyPublic, percent: float, text: str) -> None:
    view = progress_view(state)
    assert view["percent"] == percent
    assert view["text"] == text
    assert view["live"] == (state.status in ("queued", "running"))
