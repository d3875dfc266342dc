"""The robustness analysis of a study: :func:`summarize` (the numbers of the robustness summary,
version 3, as a typed :class:`Summary`; docs/summary.md defines them) and :func:`plots` (its PNG
figures). A suite's studies are put side by side and pooled by
``study.analysis.suite.summarize_suite`` (docs/suites.md).

Importing this package is light: numpy, scipy, optuna and matplotlib are imported by the
functions that need them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from study.vocab import PlotName

__all__ = ["PLOT_STEMS", "SUMMARY_VERSION", "Summary", "plots", "summarize", "summary_args"]

#: The file stems :func:`plots` writes (``<stem>.png``), in :class:`~study.vocab.PlotName`'s
#: order; the HTTP API serves them by stem.
PLOT_STEMS: tuple[PlotName, ...] = tuple(PlotName)

if TYPE_CHECKING:  # pragma: no cover
    from study.analysis.figures import plots
    from study.analysis.schema import SUMMARY_VERSION, Summary
    from study.analysis.summary import summarize

_LAZY = {
    "summarize": "study.analysis.summary",
    "plots": "study.analysis.figures",
    "Summary": "study.analysis.schema",
    "SUMMARY_VERSION": "study.analysis.schema",
}


def summary_args(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments of :func:`summarize` that come from a study's spec (as recorded,
    a JSON mapping): ``arms`` (the spec's order; the first is the baseline), ``tolerance``
    (``analysis.tolerance``) and ``lr_range`` (``search.lr.low/high``). Keys a spec lacks
    (one recorded before they existed) are left to summarize's defaults."""
    spec = spec or {}
    out: dict[str, Any] = {}
    arms = [arm["name"] for arm in spec.get("arms") or [] if isinstance(arm, Mapping)]
    if arms:
        out["arms"] = arms
    tolerance = (spec.get("analysis") or {}).get("tolerance")
    if tolerance is not None:
        out["tolerance"] = tolerance
    lr = (spec.get("search") or {}).get("lr") or {}
    if lr.get("low") is not None and lr.get("high") is not None:
        out["lr_range"] = (float(lr["low"]), float(lr["high"]))
    return out


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'study.analysis' has no attribute {name!r}")
