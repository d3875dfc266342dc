"""The one renderer of a robustness summary for the terminal (rich tables).

``hprobust run``, ``hprobust summary`` and ``hprobust submit --wait`` all print through
:func:`render`; the columns, formats, legend and verdict sentences come from
:mod:`study.analysis.present`, which the report page uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_summary(summary: Any) -> Any:
    """A :class:`~study.analysis.models.Summary` from one or from its JSON dict."""
    from study.analysis.models import Summary

    return summary if isinstance(summary, Summary) else Summary.model_validate(summary)


def render(summary: Mapping[str, Any] | Any, console: Any, *, header: str = "") -> None:
    """Print the verdicts, the per-arm (and per-init) table, the comparisons, the importances,
    the reference and the warnings."""
    from rich.table import Table

    from study.analysis import present

    s = as_summary(summary)
    title = header + ("  [bold yellow]PARTIAL[/] (finished trials so far)" if s.partial else "")
    if title:
        console.print(title)
    for c in s.comparisons:
        console.print(f"[bold]{present.verdict_sentence(c)}[/]", highlight=False)

    arms = Table(
        title="Robustness per arm and init (accuracy: final val, diverged = chance; "
        "↑ higher is better, ↓ lower is better)",
        title_justify="left",
    )
    arms.add_column("arm / init")
    for m in present.COLUMNS:
        arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
        arms.add_column(m.label + arrow, justify="right")
    arms.add_column("best cell")
    by_name = dict(s.arms)
    current = None
    for level, label, cells in present.arm_rows(s):
        if level == "arm":
            if current is not None:
                arms.add_section()
            current = by_name[label]
            arms.add_row(f"[bold]{label}[/]", *cells, present.best_cell_text(current))
        else:
            sub = current.by_init[label]
            arms.add_row(f"  {label}", *cells, present.best_cell_text(sub), style="dim")
    console.print(arms)

    if s.comparisons:
        comp = Table(
            title="Each arm vs the baseline (B − A; CIs 95%: seed bootstrap for the arm-level "
            "differences, point bootstrap for the accuracy difference)",
            title_justify="left",
        )
        for i, name in enumerate(present.COMPARISON_HEADERS):
            comp.add_column(name, justify="left" if i < 2 else "right")
        for row in present.comparison_rows(s):
            comp.add_row(*row)
        console.print(comp)
    elif len(s.arms) < 2:
        console.print("No comparison (fewer than two arms).")

    imp = Table(title="Importance over cells (normalized)", title_justify="left")
    for name in ("arm", "PED-ANOVA", "fANOVA"):
        imp.add_column(name)
    for name, arm in s.arms.items():
        imp.add_row(
            name,
            present.importance_text(arm.importance.ped_anova),
            present.importance_text(arm.importance.fanova),
        )
    console.print(imp)

    console.print(present.reference_text(s), highlight=False)
    console.print(
        f"{s.settings.n_used} finished trials used; left out: {present.left_out_text(s)}. "
        f"C = {s.settings.num_classes}, {s.settings.n_seeds} seeds.",
        highlight=False,
    )
    for warning in s.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
