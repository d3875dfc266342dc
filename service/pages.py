"""HTML of the service's own pages (Jinja2 templates in ``service/templates``): the index of
studies, and the progress block that the index and the report page share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from study.eta import format_duration
from study.vocab import LIVE

TEMPLATES = Path(__file__).parent / "templates"
REFRESH_S = 5

_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def progress_view(study: Any) -> dict[str, Any]:
    """What a progress bar shows of ``study`` (a StudyPublic): the share of trials done
    (finished or failed) and a line of counts. An ended study shows no ``running`` or
    ``pending`` counts (they could only be stale: its runs are closed or never ran) but says
    how many trials never ran."""
    p = study.progress
    total = max(int(p.total or getattr(study, "total_trials", 0) or 0), 0)
    done = int(p.finished) + int(p.failed)
    percent = 0.0 if total == 0 else min(100.0, 100.0 * done / total)
    parts = [f"{p.finished} of {total} finished"]
    if p.diverged:
        parts.append(f"{p.diverged} diverged")
    if p.failed:
        parts.append(f"{p.failed} failed")
    if study.status in LIVE:
        if p.running:
            parts.append(f"{p.running} running")
        if p.pending:
            parts.append(f"{p.pending} to go")
        eta_s = getattr(study, "eta_s", None)  # (a suite has none)
        if eta_s is not None:
            parts.append(f"about {format_duration(eta_s)} left")
    elif total > done:
        parts.append(f"{total - done} never ran")
    return {"percent": round(percent, 1), "text": " · ".join(parts), "live": study.status in LIVE}


_ENV.globals["progress_view"] = progress_view


def render_index(studies: list[Any], *, total: int, suites: list[Any] | None = None) -> str:
    """The index page: ``suites`` (SuitePublic, newest first) with their progress, then
    ``studies`` (StudyPublic, newest first), ``total`` recorded."""
    suites = list(suites or [])
    live = any(s.status in LIVE for s in [*studies, *suites])
    return _ENV.get_template("index.html").render(
        studies=studies, total=total, suites=suites, refresh_s=REFRESH_S if live else None
    )
