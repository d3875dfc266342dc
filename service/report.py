"""The HTML report page of a study (``service/templates/report.html``, Jinja2)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.pages import progress_view

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

ARM_COLUMNS = (
    ("n", "trials"),
    ("best", "best acc"),
    ("median", "median acc"),
    ("worst", "worst acc"),
    ("divergence_rate", "diverged"),
    ("best_lr", "best lr"),
    ("lr_window_decades", "lr window (decades)"),
    ("lr_sensitivity", "lr sensitivity"),
    ("init_sensitivity", "init sensitivity"),
)
REFRESH_S = 5


def fmt(value: Any) -> str:
    """A number for a table cell: 4 significant digits; ``–`` for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_ENV.filters["fmt"] = fmt
_ENV.globals["progress_view"] = progress_view  # the shared progress block (_progress.html)


def render_report(study: Any, summary: dict[str, Any], plots: list[str]) -> str:
    """The page: status and progress, the per-arm table, the comparisons and the plots.

    It reloads itself every few seconds while the study is queued or running.
    """
    return _ENV.get_template("report.html").render(
        study=study,
        summary=summary,
        arms=summary.get("arms") or {},
        comparisons=summary.get("comparisons") or [],
        columns=ARM_COLUMNS,
        plots=plots,
        refresh_s=REFRESH_S if study.status in ("queued", "running") else None,
    )
