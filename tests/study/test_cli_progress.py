"""The text beside the progress bars of ``hprobust run`` and ``hprobust submit --wait``."""

from __future__ import annotations

import doctest

import pytest

import study.cli.progress
from study.cli.progress import progress_text


def test_doctests():
    assert doctest.testmod(study.cli.progress).failed == 0


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {
                "counts": {"running": 2, "diverged": 3, "failed": 0},
                "eta_s": 61,
                "best": {"sgd": 0.9191},
                "arms": ["sgd", "adam"],
            },
            "2 running, 3 diverged · about 61 s left · best val_acc: sgd 0.919, adam –",
        ),
        ({"counts": {"running": 0}, "status": "running"}, ""),
        (
            {"counts": {"running": 2}, "status": "running", "eta_s": 7200},
            "2 running · about 2.0 h left",
        ),
        ({"counts": {"failed": 4}, "status": "cancelled", "eta_s": 30}, "cancelled · 4 failed"),
    ],
)
def test_progress_text(kwargs, text):
    counts = kwargs.pop("counts")
    assert progress_text(counts, **kwargs) == text
