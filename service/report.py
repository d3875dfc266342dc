"""The HTML report page of a study (``service/templates/report.html``, Jinja2).

It answers the study's question first: one verdict sentence per compared arm
(:func:`study.analysis.present.verdict_sentence`, the CLI's too), then the warnings where the
design is too small for the claims, a legend with each metric's direction, the per-arm and
per-init table, the comparisons, the importances, the spec's essentials and the plots (each a
link to the full-size PNG; ``lr_curves`` full width). While the study runs the summary is
provisional: no verdict, the numbers greyed, with the finished/running/pending counts. Numbers,
directions and missing values are formatted by :mod:`study.analysis.present`, as in the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from service.pages import progress_view
from study.analysis import present
from study.analysis.schema import Summary
from study.vocab import LIVE, PLOT_CAPTIONS, PlotName

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_ENV.filters["fmt"] = present.fmt
_ENV.filters["interval"] = present.fmt_interval
_ENV.globals["progress_view"] = progress_view  # the shared progress block (_progress.html)
REFRESH_S = 5
#: Plots shown the page's full width (one panel per init: too small at half width).
WIDE_PLOTS = frozenset({PlotName.LR_CURVES})


def _hparams(arm: Mapping[str, Any]) -> str:
    extra = {k: v for k, v in arm.items() if k not in ("name", "optimizer")}
    inner = ", ".join(f"{k}={v}" for k, v in extra.items())
    return f"{arm.get('optimizer')}" + (f" ({inner})" if inner else "")


def _named(value: Any) -> str:
    if isinstance(value, Mapping):
        options = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value.get('name')}" + (f" ({options})" if options else "")
    return str(value)


def spec_essentials(spec: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``(label, text)`` rows: model, dataset, arms, design, budget, training."""
    if not spec:
        return []
    search = spec.get("search") or {}
    lr = search.get("lr") or {}
    density = (
        f"{lr['points']} points"
        if lr.get("points")
        else f"{lr.get('points_per_decade') or 4:g} per decade"
        if spec.get("sampler", "grid") == "grid"
        else "log-uniform"
    )
    design = (
        f"sampler {spec.get('sampler', 'grid')}; lr {lr.get('low')}–{lr.get('high')} "
        f"({density}); inits {', '.join(search.get('init') or [])}"
    )
    scale = search.get("init_scale")
    if scale:
        design += f"; init_scale {scale.get('low')}–{scale.get('high')}"
    arms = "; ".join(f"{a.get('name')}: {_hparams(a)}" for a in spec.get("arms") or [])
    tolerance = (spec.get("analysis") or {}).get("tolerance", 0.02)
    budget = f"{spec.get('seeds', 1)} seeds" + (
        f", {spec['trials_per_arm']} points per arm" if spec.get("trials_per_arm") else ""
    )
    return [
        ("model", _named(spec.get("model"))),
        ("dataset", _named(spec.get("dataset"))),
        ("arms", arms),
        ("design", design),
        ("budget", budget),
        (
            "training",
            f"{spec.get('epochs')} epochs, batch {spec.get('batch_size')}, schedule "
            f"{_named(spec.get('schedule'))}, {spec.get('precision', 'fp32')}",
        ),
        ("analysis", f"tolerance τ = {tolerance}"),
    ]


def render_report(
    study: Any,
    summary: Summary | Mapping[str, Any],
    plots: list[str],
    *,
    spec: Mapping[str, Any] | None = None,
    design_warnings: list[str] | None = None,
) -> str:
    """The page: verdicts, warnings, status, legend, tables, importances, spec, plots.

    It reloads itself every few seconds while the study is queued or running.
    """
    s = summary if isinstance(summary, Summary) else Summary.model_validate(summary)
    pending = any(c.verdict == "pending" for c in s.comparisons) or study.status in LIVE
    by_name = dict(s.arms)
    rows = []
    current = None
    for level, label, cells in present.arm_rows(s):
        if level == "arm":
            current = by_name[label]
            best = present.best_cell_text(current)
        else:
            best = present.best_cell_text(current.by_init[label])
        rows.append({"level": level, "label": label, "cells": cells, "best_cell": best})
    return _ENV.get_template("report.html").render(
        study=study,
        summary=s,
        verdicts=[(c, *present.verdict_parts(c, s)) for c in s.comparisons],
        provisional=_counts(study) if pending else None,
        warnings=list(design_warnings or []) + list(s.warnings),
        columns=present.COLUMNS,
        rows=rows,
        comparison=present.comparison_table(s) if s.comparisons else None,
        importances=[
            (
                name,
                present.importance_text(arm.importance.ped_anova),
                present.importance_text(arm.importance.fanova),
            )
            for name, arm in s.arms.items()
        ],
        reference=present.reference_text(s),
        left_out=present.left_out_text(s),
        essentials=spec_essentials(spec),
        plots=[(stem, PLOT_CAPTIONS.get(stem, stem)) for stem in plots],
        wide_plots={str(stem) for stem in WIDE_PLOTS},
        missing=present.MISSING,
        refresh_s=REFRESH_S if study.status in LIVE else None,
    )


def _counts(study: Any) -> str:
    """``12 finished, 2 running, 306 pending of 320 trials`` from the study's progress."""
    p = study.progress
    total = int(getattr(p, "total", 0) or getattr(study, "total_trials", 0) or 0)
    return f"{p.finished} finished, {p.running} running, {p.pending} pending of {total} trials"


def render_not_found(message: str) -> str:
    """The page a report link of an unknown study answers (a browser opened it: not JSON)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>hprobust: no such study</title></head><body><h1>No such study</h1>"
        f'<p>{escape(message)}</p><p><a href="/studies">All studies (JSON)</a></p></body></html>'
    )
