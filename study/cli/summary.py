"""``hprobust summary STUDY_ID``: the sensitivity summary of a study, as tables or JSON.

Reads the embedded store ``DIR/mlflow.db`` (``--data-dir``, default ``./hprobust-data``). A
finished study shows its stored ``summary.json``; a study still running (or stopped) shows one
computed now from its finished trials, marked PARTIAL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from study.cli import app

DEFAULT_DIR = Path("hprobust-data")


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _num(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def _importance(values: dict[str, float] | None) -> str:
    if not values:
        return "—"
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


def render(summary: dict[str, Any], console: Any, *, header: str = "") -> None:
    """Print ``summary`` as rich tables: one row per arm and per arm x init, the importances,
    the comparisons against the baseline, and what was left out."""
    from rich.table import Table

    settings = summary.get("settings", {})
    partial = bool(summary.get("partial"))
    title = header + ("  [bold yellow]PARTIAL[/] (finished trials so far)" if partial else "")
    if title:
        console.print(title)

    arms = Table(
        title="Sensitivity per arm (accuracy: final val, diverged = chance)",
        title_justify="left",
    )
    for name, justify in (
        ("arm / init", "left"),
        ("n", "right"),
        ("best", "right"),
        ("median", "right"),
        ("worst", "right"),
        ("diverged", "right"),
        ("best lr", "right"),
        ("lr window (dec)", "right"),
        ("lr sens.", "right"),
        ("init sens.", "right"),
    ):
        arms.add_column(name, justify=justify)

    def cells(stats: dict[str, Any]) -> list[str]:
        return [
            str(stats.get("n", 0)),
            _num(stats.get("best")),
            _num(stats.get("median")),
            _num(stats.get("worst")),
            _num(stats.get("divergence_rate"), ".0%"),
            _num(stats.get("best_lr"), ".3g"),
            _num(stats.get("lr_window_decades"), ".2f"),
            _num(stats.get("lr_sensitivity"), ".3f"),
        ]

    for arm, stats in summary.get("arms", {}).items():
        arms.add_row(f"[bold]{arm}[/]", *cells(stats), _num(stats.get("init_sensitivity")))
        for init, sub in stats.get("by_init", {}).items():
            arms.add_row(f"  {init}", *cells(sub), "", style="dim")
        arms.add_section()
    console.print(arms)

    imp = Table(title="Importance (normalized)", title_justify="left")
    for name in ("arm", "PED-ANOVA", "fANOVA"):
        imp.add_column(name)
    for arm, stats in summary.get("arms", {}).items():
        values = stats.get("importance") or {}
        imp.add_row(arm, _importance(values.get("ped_anova")), _importance(values.get("fanova")))
    console.print(imp)

    comparisons = summary.get("comparisons", [])
    if comparisons:
        comp = Table(
            title="Paired comparison vs baseline (matched lr, init, init_scale, seed)",
            title_justify="left",
        )
        for name in ("arm", "baseline", "pairs", "mean diff", "95% CI", "p (Wilcoxon)", "wins"):
            comp.add_column(name, justify="left" if name in ("arm", "baseline") else "right")
        for c in comparisons:
            ci = "—" if c.get("ci_low") is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
            comp.add_row(
                c["arm"],
                c["baseline"],
                str(c.get("n_pairs", 0)),
                _num(c.get("mean_diff"), "+.3f"),
                ci,
                _num(c.get("p_value"), ".3g"),
                _num(c.get("win_rate"), ".0%"),
            )
        console.print(comp)
    else:
        console.print("No comparison (fewer than two arms).")

    excluded = {k: v for k, v in settings.get("excluded", {}).items() if v}
    left_out = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items()) or "none"
    console.print(
        f"{settings.get('n_used', 0)} finished trials used; left out: {left_out}. "
        f"Bins {settings.get('bin_width')} decades, δ = {settings.get('delta')}, "
        f"C = {settings.get('num_classes')}.",
        highlight=False,
    )


@app.command()
def summary(
    study_id: Annotated[str, typer.Argument(help="The study id (printed by hprobust run).")],
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Directory of the embedded store (DIR/mlflow.db)."),
    ] = DEFAULT_DIR,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of tables.")
    ] = False,
) -> None:
    """The sensitivity summary of a study: per arm and init, and each arm vs the baseline."""
    from rich.console import Console

    from study.errors import HprobustError, StudyNotFoundError
    from study.records import StudyStore, sqlite_uri

    if not (Path(data_dir) / "mlflow.db").is_file():
        _fail(f"no study store in {data_dir} (no mlflow.db); pass --data-dir")
    store = StudyStore(sqlite_uri(data_dir))
    try:
        record = store.get(study_id)
        result = store.summary(study_id)
    except StudyNotFoundError as exc:
        _fail(f"{exc} in {data_dir}")
    except HprobustError as exc:
        _fail(f"cannot summarize study {study_id}: {exc}", 1)
    if as_json:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    render(
        result,
        Console(),
        header=f"[bold]{record.id}[/]  {record.name}  (status: {record.status}, "
        f"{record.total_trials} trials planned)",
    )
