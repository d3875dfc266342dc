"""How the summary's numbers are shown: one formatter, one column list, one legend, and the
verdict sentences. The CLI tables (``study.cli.tables``) and the report page
(``service/templates/report.html``) both render from here, so a number, its direction and a
missing value (:data:`MISSING`) look the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from study.analysis.schema import ArmSummary, Comparison, InitSummary, Summary

#: How a value that cannot be computed is shown (``null`` in JSON).
MISSING = "–"

_FORMATS = {
    "int": "d",
    "acc": ".3f",
    "pct": ".0%",
    "lr": ".3g",
    "decades": ".2f",
    "loss": ".3f",
    "diff": "+.3f",
    "decades_diff": "+.2f",
    "p": ".3g",
}


def fmt(value: Any, kind: str = "acc") -> str:
    """``value`` as text in the style of ``kind`` (see :data:`_FORMATS`); :data:`MISSING` for
    ``None`` or a non-finite number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "int":
        return str(int(value))
    text = format(value, _FORMATS.get(kind, ".4g"))
    return text.replace("-", "−") if kind.endswith("diff") else text


def fmt_interval(pair: list[float] | None, kind: str = "diff") -> str:
    """``[low, high]`` or :data:`MISSING`."""
    if pair is None:
        return MISSING
    return f"[{fmt(pair[0], kind)}, {fmt(pair[1], kind)}]"


@dataclass(frozen=True)
class Metric:
    """A column of the per-arm table: summary key, header, format kind, direction, meaning."""

    key: str
    label: str
    kind: str
    better: str  # "higher", "lower" or "" (a count or a description)
    meaning: str


#: The per-arm (and per arm x init) table, in column order.
COLUMNS: tuple[Metric, ...] = (
    Metric("n_trials", "trials", "int", "", "finished trials used (diverged included)"),
    Metric("n_cells", "cells", "int", "", "points tried (seeds averaged into one cell)"),
    Metric("best", "best", "acc", "higher", "best cell mean val accuracy"),
    Metric("median", "median", "acc", "higher", "median cell mean val accuracy"),
    Metric("worst", "worst", "acc", "higher", "worst cell mean val accuracy"),
    Metric("divergence_rate", "diverged", "pct", "lower", "share of trials that diverged"),
    Metric(
        "failure_rate",
        "failed",
        "pct",
        "lower",
        "share of trials that diverged or ended below h (halfway from chance to the best)",
    ),
    Metric(
        "auc",
        "AUC",
        "acc",
        "higher",
        "mean accuracy over log10(lr) across the study's lr range (flat beyond the lrs tried)",
    ),
    Metric(
        "lr_window_decades",
        "window",
        "decades",
        "higher",
        "lr window: the longest lr interval (decades) where accuracy stays within the "
        "tolerance of the study's best (≥ g)",
    ),
    Metric("good_fraction", "good", "pct", "higher", "share of cells with accuracy ≥ g"),
    Metric(
        "lr_sensitivity",
        "lr sens",
        "loss",
        "lower",
        "mean clipped val loss over log10(lr) minus the study's best loss (Wortsman et al.)",
    ),
    Metric(
        "init_regret",
        "regret",
        "acc",
        "lower",
        "init regret: mean over inits of (study's best − the init's best cell)",
    ),
    Metric(
        "init_spread", "spread", "acc", "lower", "best init's best cell − worst init's best cell"
    ),
)
#: Columns that exist for a whole arm only.
ARM_ONLY = ("init_regret", "init_spread")


#: The per-arm table in two parts, for narrow terminals: what accuracy each arm reaches, and
#: how robust it is.
ACCURACY_COLUMNS = COLUMNS[:7]
ROBUSTNESS_COLUMNS = COLUMNS[7:]


def arm_rows(
    summary: Summary, columns: tuple[Metric, ...] = COLUMNS
) -> list[tuple[str, str, list[str]]]:
    """``(level, label, cells)`` per arm and then per init under it (level ``arm``/``init``),
    with the cells of ``columns``."""
    out: list[tuple[str, str, list[str]]] = []
    for name, arm in summary.arms.items():
        out.append(("arm", name, _cells(arm, columns)))
        for init, sub in arm.by_init.items():
            out.append(("init", init, _cells(sub, columns)))
    return out


def _cells(group: InitSummary | ArmSummary, columns: tuple[Metric, ...]) -> list[str]:
    values = []
    for m in columns:
        if m.key in ARM_ONLY and not isinstance(group, ArmSummary):
            values.append("")
        else:
            values.append(fmt(getattr(group, m.key), m.kind))
    return values


def best_cell_text(group: InitSummary, *, short: bool = False) -> str:
    """Where the group's best cell is: ``lr 0.01, kaiming_normal`` (``short``: ``0.01`` for
    an init's row, ``0.01 kaiming_normal`` for an arm's)."""
    cell = group.best_cell
    if cell is None:
        return MISSING
    scale = "" if cell.init_scale == 1.0 else f" ×{cell.init_scale:g}"
    if short:
        init = "" if not isinstance(group, ArmSummary) else f" {cell.init}"
        return f"{cell.lr:.3g}{init}{scale}"
    return f"lr {cell.lr:.3g}, {cell.init}{scale}"


_VERDICT_WORDS = {
    "more_robust": "more robust",
    "less_robust": "less robust",
    "no_clear_difference": "no clear difference",
    "not_enough_data": "not enough data for a verdict",
}


def verdict_words(verdict: str) -> str:
    return _VERDICT_WORDS.get(verdict, verdict)


def verdict_sentence(c: Comparison) -> str:
    """One sentence built from a comparison's numbers, e.g. ``insgd vs sgd: AUC +0.031
    [+0.012, +0.050], LR window +0.50 decades; mean paired accuracy difference +0.020
    [−0.010, +0.050] over 68 points: more robust``."""
    auc = f"AUC {fmt(c.auc_diff, 'diff')} {fmt_interval(c.auc_diff_ci)}"
    window = f"LR window {fmt(c.window_diff, 'decades_diff')} decades"
    points = "point" if c.n_points == 1 else "points"
    paired = (
        f"mean paired accuracy difference {fmt(c.mean_diff, 'diff')} {fmt_interval(c.ci)} "
        f"over {c.n_points} {points}"
    )
    return f"{c.arm} vs {c.baseline}: {auc}, {window}; {paired}: {verdict_words(c.verdict)}"


def _with_ci(value: float | None, ci: list[float] | None, kind: str = "diff") -> str:
    return f"{fmt(value, kind)} {fmt_interval(ci, kind)}"


#: The comparison table: one row per number (label, how to read it), one column per compared
#: arm. Each entry maps a Comparison to its text.
COMPARISON_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("verdict", "", lambda c: verdict_words(c.verdict)),
    (
        "AUC diff [95% CI]",
        "↑ seed bootstrap",
        lambda c: _with_ci(c.auc_diff, c.auc_diff_ci),
    ),
    (
        "lr window diff (decades)",
        "↑ seed bootstrap",
        lambda c: _with_ci(c.window_diff, c.window_diff_ci, "decades_diff"),
    ),
    (
        "good fraction diff",
        "↑ seed bootstrap",
        lambda c: _with_ci(c.good_fraction_diff, c.good_fraction_diff_ci),
    ),
    (
        "init regret diff",
        "↓ seed bootstrap",
        lambda c: _with_ci(c.init_regret_diff, c.init_regret_diff_ci),
    ),
    ("mean acc diff [95% CI]", "↑ point bootstrap", lambda c: _with_ci(c.mean_diff, c.ci)),
    (
        "… where either learned",
        "↑ point bootstrap",
        lambda c: f"{_with_ci(c.mean_diff_live, c.ci_live)} ({c.n_live} pts)",
    ),
    ("Wilcoxon p", "", lambda c: fmt(c.wilcoxon_p, "p")),
    ("win rate", "↑", lambda c: fmt(c.win_rate, "pct")),
    (
        "points (seeds)",
        "",
        lambda c: f"{c.n_points}{'' if c.paired else ' unpaired'} ({c.n_seeds} seeds)",
    ),
)


def comparison_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)``: a column per comparison (``B vs A``), a row per number."""
    headers = ["B − A", ""] + [f"{c.arm} vs {c.baseline}" for c in summary.comparisons]
    rows = [
        [label, how] + [text(c) for c in summary.comparisons]
        for label, how, text in COMPARISON_ROWS
    ]
    return headers, rows


def importance_text(values: dict[str, float] | None) -> str:
    if not values:
        return MISSING
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v:.2f}" for k, v in ranked)


def left_out_text(summary: Summary) -> str:
    excluded = {k: v for k, v in summary.settings.excluded.items() if v}
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items()) or "none"


def reference_text(summary: Summary) -> str:
    """One line: A*, g, h, the lr range, tau and C."""
    ref = summary.reference
    lr_range = MISSING if ref.lr_range is None else f"{ref.lr_range[0]:.3g}–{ref.lr_range[1]:.3g}"
    where = ""
    if ref.best_cell is not None:
        b = ref.best_cell
        where = f" ({b.arm}, lr {b.lr:.3g}, {b.init})"
    return (
        f"study's best A* = {fmt(ref.best_acc)}{where}; good g = A* − τ = "
        f"{fmt(ref.good_threshold)} (τ = {ref.tolerance:g}); learned h = "
        f"{fmt(ref.learned_threshold)}; chance {fmt(ref.chance_acc)}; lr range {lr_range}"
    )
