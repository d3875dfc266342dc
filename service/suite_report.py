"""The HTML report page of a suite (``service/templates/suite_report.html``, Jinja2).

It answers the suite's question first: one sentence per comparison
(:func:`study.analysis.suite_present.suite_sentence`, the CLI's too), then the warnings, the
forest plot and the performance profile, and the per-workload table
(:func:`study.analysis.suite_present.workload_rows`) with links to each study's report and its
runs in MLflow. While a study of the suite runs the page says the numbers are provisional and
reloads itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.pages import progress_view
from study.analysis.suite_present import suite_lines, workload_rows
from study.analysis.suite_schema import SuiteSummary
from study.vocab import LIVE, SUITE_PLOT_CAPTIONS, SuitePlotName

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_ENV.globals["progress_view"] = progress_view
REFRESH_S = 5


def render_suite_report(suite: Any, summary: SuiteSummary) -> str:
    """The page of ``suite`` (a SuitePublic) and its ``summary``."""
    headers, rows = workload_rows(summary)
    by_study = {s.study_id: s for s in suite.studies}
    table = [
        {"cells": row, "study": by_study.get(row[1])}
        for row in rows  # row[1] is the study id
    ]
    live = suite.status in LIVE
    figures = [
        (
            name,
            suite.links.forest if name == SuitePlotName.FOREST else suite.links.profile,
            SUITE_PLOT_CAPTIONS[name],
        )
        for name in SuitePlotName
    ]
    return _ENV.get_template("suite_report.html").render(
        suite=suite,
        summary=summary,
        sentences=list(zip(summary.comparisons, suite_lines(summary), strict=True)),
        warnings=list(summary.warnings),
        headers=headers,
        table=table,
        figures=figures,
        refresh_s=REFRESH_S if live else None,
    )
