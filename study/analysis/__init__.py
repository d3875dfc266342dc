"""The sensitivity analysis of a study: :func:`summarize` (the numbers of DESIGN.md's "The
sensitivity summary") and :func:`plots` (its PNG figures).

Importing this package is light: numpy, scipy, optuna and matplotlib are imported by the
functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["PLOT_STEMS", "plots", "summarize"]

#: The file stems :func:`plots` writes (``<stem>.png``); the HTTP API serves them by stem.
PLOT_STEMS = ("acc_vs_lr", "heatmap", "expected_max")

if TYPE_CHECKING:  # pragma: no cover
    from study.analysis.figures import plots
    from study.analysis.summary import summarize

_LAZY = {"summarize": "study.analysis.summary", "plots": "study.analysis.figures"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'study.analysis' has no attribute {name!r}")
