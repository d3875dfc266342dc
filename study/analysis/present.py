"""How the summary's numbers are shown: one formatter, one column list, one legend, and the
verdict sentence. The CLI tables (``study.cli.tables``), the report page
(``service/templates/report.html``) and the study run's description in MLflow
(``study.records.formats.study_note``) all render from here, so a verdict, a number, its
direction and a missing value (:data:`MISSING`) read the same everywhere. docs/summary.md says
what each number means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from study.analysis.schema import ArmSummary, Comparison, GroupSummary, InitSummary, Summary

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
#: Below this many decades the best-lr shift is not mentioned in the verdict sentence.
SHIFT_WORTH_SAYING = 0.5


def fmt(value: Any, kind: str = "acc") -> str:
    """``value`` as text in the style of ``kind`` (see :data:`_FORMATS`); :data:`MISSING` for
    ``None`` or a non-finite number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "int":
        return str(int(value))
    if kind == "cut":
        return ", ".join(value)
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
    Metric(
        "range_cut",
        "cut",
        "cut",
        "",
        "per init: an end of the lr range (low, high) where the curve still learns (≥ h): the "
        "range cuts the good region, and the verdict is range_limited",
    ),
)
#: Columns that exist for a whole arm only, and for an arm x init only.
ARM_ONLY = ("init_regret", "init_spread")
INIT_ONLY = ("range_cut",)


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
        if (m.key in ARM_ONLY and not isinstance(group, ArmSummary)) or (
            m.key in INIT_ONLY and not isinstance(group, InitSummary)
        ):
            values.append("")
        else:
            values.append(fmt(getattr(group, m.key), m.kind))
    return values


def best_cell_text(group: GroupSummary, *, short: bool = False) -> str:
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
    "pending": "no verdict yet",
    "not_enough_data": "not enough data for a verdict",
    "range_limited": "limited by the lr range",
    "more_robust": "more robust",
    "less_robust": "less robust",
    "mixed": "mixed",
    "no_clear_difference": "no clear difference",
}


def verdict_words(verdict: str) -> str:
    return _VERDICT_WORDS.get(verdict, verdict)


def _decades(value: float) -> str:
    return f"{abs(value):.2g} decade" + ("" if abs(value) == 1 else "s")


def _cut_text(c: Comparison, summary: Summary) -> str:
    """Which arms and inits the lr range cuts at which end, and the bound to try there (one
    decade further out), e.g. ``the lr range cuts insgd (kaiming_normal) at its high end: it
    still learns at the highest lr; try search.lr.high 100``."""
    lr_range = summary.reference.lr_range
    parts = []
    for end in ("low", "high"):
        by_arm: dict[str, list[str]] = {}
        for cut in c.range_cut:
            if cut.end == end:
                by_arm.setdefault(cut.arm, []).append(cut.init)
        if not by_arm:
            continue
        who = []
        for arm, inits in by_arm.items():
            every = arm in summary.arms and len(inits) == len(summary.arms[arm].by_init) > 1
            who.append(f"{arm} ({'every init' if every else ', '.join(inits)})")
        names = " and ".join([", ".join(who[:-1]), who[-1]] if len(who) > 1 else who)
        side = "lowest" if end == "low" else "highest"
        they = "it still learns" if len(who) == 1 else "they still learn"
        text = f"the lr range cuts {names} at its {end} end: {they} at the {side} lr"
        if lr_range is not None:
            bound = lr_range[0] / 10 if end == "low" else lr_range[1] * 10
            text += f"; try search.lr.{end} {bound:.3g}"
        parts.append(text)
    return "; ".join(parts)


def verdict_parts(c: Comparison, summary: Summary) -> tuple[str, str, str]:
    """``(pair, verdict in words, the numbers behind it)`` of a comparison, the three parts of
    :func:`verdict_sentence` (the report colours the middle one)."""
    pair = f"{c.arm} vs {c.baseline}"
    words = verdict_words(c.verdict)
    if c.verdict == "mixed" and c.auc_diff_ci is not None:
        higher = c.auc_diff_ci[0] > 0
        words += " (higher AUC, narrower lr window)" if higher else " (lower AUC, wider lr window)"
    elif c.verdict == "pending":
        words += " (the study is still running; the numbers are provisional)"
    elif c.verdict == "not_enough_data":
        seeds = "seed" if c.n_seeds == 1 else "seeds"
        points = "point" if c.n_points == 1 else "points"
        words += f" ({c.n_seeds} {seeds}, {c.n_points} {points}: it needs 3 seeds and 6 points)"
    seeds = "seed" if c.n_seeds == 1 else "seeds"
    numbers = (
        f"AUC {fmt(c.auc_diff, 'diff')} {fmt_interval(c.auc_diff_ci)} over {c.n_seeds} {seeds}, "
        f"LR window {fmt(c.window_diff, 'decades_diff')} "
        f"{fmt_interval(c.window_diff_ci, 'decades_diff')} decades"
    )
    shift = c.lr_shift_decades
    if shift is not None and abs(shift) >= SHIFT_WORTH_SAYING - 1e-9:  # lrs keep 12 digits
        numbers += f"; its best lr sits {_decades(shift)} {'higher' if shift > 0 else 'lower'}"
    if c.range_cut:
        numbers += "; " + _cut_text(c, summary)
    return pair, words, numbers


def verdict_sentence(c: Comparison, summary: Summary) -> str:
    """The one sentence that states a comparison's verdict, everywhere it is shown (report,
    CLI, ``submit --wait``, the study run in MLflow): the verdict in words first, then the AUC
    difference with its replicate interval and the number of seeds, the lr window difference
    with its interval, the best-lr shift when it is half a decade or more, and the ends the lr
    range cuts with the bound to try. For example ``insgd vs sgd: more robust — AUC +0.031
    [+0.012, +0.050] over 5 seeds, LR window +0.50 [+0.10, +0.90] decades; its best lr sits
    0.75 decades lower``."""
    pair, words, numbers = verdict_parts(c, summary)
    return f"{pair}: {words} — {numbers}"


def verdict_lines(summary: Summary | Mapping[str, Any] | None) -> list[str]:
    """The verdict sentence of each comparison of ``summary`` (a Summary or its JSON dict; an
    older or malformed dict gives none)."""
    if summary is None:
        return []
    if not isinstance(summary, Summary):
        from pydantic import ValidationError

        try:
            summary = Summary.model_validate(summary)
        except ValidationError:
            return []
    return [verdict_sentence(c, summary) for c in summary.comparisons]


def _with_ci(value: float | None, ci: list[float] | None, kind: str = "diff") -> str:
    return f"{fmt(value, kind)} {fmt_interval(ci, kind)}"


#: The comparison table: one row per number (label, how to read it), one column per compared
#: arm. Each entry maps a Comparison to its text.
COMPARISON_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("verdict", "", lambda c: verdict_words(c.verdict)),
    (
        "AUC diff [95% CI]",
        "↑ t over seeds",
        lambda c: _with_ci(c.auc_diff, c.auc_diff_ci),
    ),
    ("AUC diff p", "t-test", lambda c: fmt(c.auc_p, "p")),
    (
        "lr window diff (decades)",
        "↑ t over seeds",
        lambda c: _with_ci(c.window_diff, c.window_diff_ci, "decades_diff"),
    ),
    (
        "good fraction diff",
        "↑ t over seeds",
        lambda c: _with_ci(c.good_fraction_diff, c.good_fraction_diff_ci),
    ),
    (
        "init regret diff",
        "↓ t over seeds",
        lambda c: _with_ci(c.init_regret_diff, c.init_regret_diff_ci),
    ),
    ("best-lr shift (decades)", "B − A", lambda c: fmt(c.lr_shift_decades, "decades_diff")),
    (
        "range cut",
        "",
        lambda c: ", ".join(f"{x.arm} {x.init} {x.end}" for x in c.range_cut) or "none",
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
