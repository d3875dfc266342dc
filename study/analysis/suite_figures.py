"""The figures of a suite summary (PNG; docs/suites.md, "Plots"): the forest plot of every
comparison and the performance profile of every arm.

Like :mod:`study.analysis.figures`: :class:`matplotlib.figure.Figure` with the Agg canvas, no
``pyplot`` and no global state, and each arm in the colour it has in every study plot
(:func:`study.analysis.figures.arm_colors`, by position in the arm order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from study.analysis.figures import CHANCE_COLOR, DPI, arm_colors
from study.analysis.present import fmt, fmt_interval, verdict_words
from study.analysis.suite_present import weight_text
from study.analysis.suite_schema import SuiteSummary
from study.vocab import SuitePlotName

#: Markers and colours of the forest plot.
NOT_POOLED_COLOR = "0.6"
_ROW = 0.34  # inches per forest row


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _provisional(summary: SuiteSummary) -> str:
    s = summary.settings
    return (
        f" — provisional: {s.n_ended} of {s.n_workloads} studies ended" if summary.partial else ""
    )


# ---- forest.png ------------------------------------------------------------------------------


def plot_forest(summary: SuiteSummary, path: Path) -> Path:
    """One row group per comparison: per workload the study's AUC difference B − A with its
    95% replicate interval (a square sized by its pooled weight; hollow when range-limited,
    grey when not pooled), then the pooled estimate as a diamond spanning its interval; a
    vertical line at 0. The numbers are written on the right."""
    colors = arm_colors(summary.settings.arms)
    rows: list[tuple[str, str, Any]] = []  # (kind, label, payload)
    for c in summary.comparisons:
        rows.append(("header", f"{c.arm} vs {c.baseline}", c))
        for w in summary.workloads:
            wc = next(x for x in w.comparisons if x.arm == c.arm)
            rows.append(("workload", w.name, wc))
        rows.append(("pooled", "pooled", c))
    n = len(rows)
    fig = _figure(9.0, 1.2 + _ROW * max(n, 3))
    ax = fig.subplots()
    if not summary.comparisons:
        _no_data(ax, "the suite has one arm: nothing to compare")
        return _save(fig, path)
    y = np.arange(n)[::-1].astype(float)
    labels, numbers = [], []
    xs: list[float] = [0.0]
    for yi, (kind, label, item) in zip(y, rows, strict=True):
        if kind == "header":
            labels.append(label)
            numbers.append("AUC diff [95% CI]   weight")
            ax.axhspan(yi - 0.5, yi + 0.5, color="0.93", zorder=0)
            continue
        if kind == "workload":
            wc = item
            color = colors.get(wc.arm, "black") if wc.pooled else NOT_POOLED_COLOR
            flag = " (range-limited)" if wc.range_limited else ""
            labels.append(f"{label}{flag}")
            if wc.auc_diff is None:
                numbers.append(weight_text(wc))
                continue
            if wc.auc_diff_ci is not None:
                ax.plot(wc.auc_diff_ci, [yi, yi], color=color, linewidth=1.6, zorder=2)
                xs += list(wc.auc_diff_ci)
            size = 6 + 10 * np.sqrt(wc.weight) if wc.weight is not None else 6
            ax.plot(
                [wc.auc_diff],
                [yi],
                marker="D" if wc.range_limited else "s",
                markersize=size,
                markerfacecolor="white" if wc.range_limited else color,
                markeredgecolor=color,
                markeredgewidth=1.6,
                linestyle="none",
                zorder=3,
            )
            xs.append(wc.auc_diff)
            interval = f" {fmt_interval(wc.auc_diff_ci)}" if wc.auc_diff_ci is not None else ""
            numbers.append(f"{fmt(wc.auc_diff, 'diff')}{interval}   {weight_text(wc)}")
            continue
        c = item
        i2 = "–" if c.i2 is None else f"{c.i2:.0%}"
        labels.append(f"pooled (k = {c.k}, I² {i2})")
        if c.pooled_auc_diff is None or c.pooled_ci is None:
            numbers.append(f"not pooled: k = {c.k} < 2")
            continue
        low, high = c.pooled_ci
        mid = c.pooled_auc_diff
        ax.fill(
            [low, mid, high, mid],
            [yi, yi + 0.32, yi, yi - 0.32],
            color=colors.get(c.arm, "black"),
            alpha=0.45 if summary.partial else 1.0,  # provisional
            edgecolor="black",
            linewidth=0.8,
            zorder=3,
        )
        xs += [low, high]
        numbers.append(
            f"{fmt(mid, 'diff')} {fmt_interval(c.pooled_ci)}   {verdict_words(c.verdict)}"
        )
    ax.axvline(0.0, color=CHANCE_COLOR, linewidth=1.2, linestyle="-", zorder=1)
    lo, hi = min(xs), max(xs)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    for tick, (kind, _, _) in zip(ax.get_yticklabels(), rows, strict=True):
        if kind != "workload":
            tick.set_fontweight("bold")
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y)
    right.set_yticklabels(numbers, fontsize=8.5)
    right.tick_params(axis="y", length=0)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("AUC difference B − A (right of 0: B keeps more accuracy over the lr range)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"{summary.name}: AUC difference per workload, pooled{_provisional(summary)}")
    return _save(fig, path)


# ---- suite_profile.png -----------------------------------------------------------------------


def _steps(gaps: list[float], n: int, t_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact step function rho(t) = #{gap <= t} / n on [0, t_max]: its breakpoints."""
    inside = sorted(g for g in gaps if g <= t_max)
    t = np.array([0.0, *inside, t_max])
    rho = np.array([sum(g <= x + 1e-12 for g in gaps) / n for x in t])
    return t, rho


def plot_suite_profile(summary: SuiteSummary, path: Path) -> Path:
    """For each arm the share of workloads where its AUC is within t of the best arm's there
    (Dolan–Moré), as t runs from 0 to the profile's last t; the steps sit at the exact gaps."""
    profile = summary.profile
    colors = arm_colors(summary.settings.arms)
    fig = _figure(6.6, 4.4)
    ax = fig.subplots()
    n = len(profile.workloads)
    if n == 0:
        _no_data(ax, "no workload has an AUC yet")
        return _save(fig, path)
    t_max = profile.t[-1]
    finite = [g for p in profile.arms.values() for g in p.gaps.values() if g is not None]
    # every curve is flat from its largest gap on: show up to a little past the largest
    shown = min(t_max, max(0.05, 1.15 * max(finite, default=0.0)))
    widths = np.linspace(4.0, 1.6, max(len(profile.arms), 1))
    for (arm, p), width in zip(profile.arms.items(), widths, strict=True):
        gaps = [g for g in p.gaps.values() if g is not None]
        t, rho = _steps(gaps, n, t_max)
        ax.step(
            t,
            rho,
            where="post",
            color=colors.get(arm, "black"),
            linewidth=width,
            label=f"{arm} (best on {sum(g <= 1e-12 for g in gaps)} of {n})",
        )
    ax.set_xlim(-0.01 * shown, shown)
    ax.set_ylim(-0.03, 1.03)
    flat = f" (every curve stays flat from here to {t_max:g})" if shown < t_max else ""
    ax.set_xlabel(f"t: AUC gap to the best arm of the workload{flat}")
    ax.set_ylabel("share of workloads with gap ≤ t")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(f"Performance profile over {n} workloads{_provisional(summary)}")
    return _save(fig, path)


#: The drawing function of each suite figure: ``draw(summary, path) -> path``.
SUITE_FIGURES: dict[SuitePlotName, Callable[[SuiteSummary, Path], Path]] = {
    SuitePlotName.FOREST: plot_forest,
    SuitePlotName.SUITE_PROFILE: plot_suite_profile,
}


def suite_plots(
    summary: SuiteSummary | Mapping[str, Any], out_dir: str | Path
) -> dict[SuitePlotName, Path]:
    """Draw the suite's figures into ``out_dir`` (created if missing): ``forest.png`` and
    ``suite_profile.png`` (:class:`~study.vocab.SuitePlotName`). Returns their paths by name,
    in that order."""
    if not isinstance(summary, SuiteSummary):
        summary = SuiteSummary.model_validate(summary)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {name: SUITE_FIGURES[name](summary, out / f"{name}.png") for name in SuitePlotName}
