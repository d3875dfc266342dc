"""``hprobust summary STUDY_ID``: the robustness summary of a study, as tables or JSON.

Reads the embedded store ``DIR/mlflow.db`` (``--data-dir``, default ``./hprobust-data``). A
finished study shows its stored ``summary.json`` (one stored by an older version is recomputed
from its trials); a study still running shows one computed now from its finished trials,
marked PARTIAL, its numbers provisional and every verdict pending; a stopped one (cancelled,
failed) is summarized from the trials it finished, with verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from study.cli.group import app
from study.cli.options import DEFAULT_DIR, fail, styled


@app.command()
def summary(
    study_id: Annotated[
        str, typer.Argument(help="The study or suite id (printed by hprobust run).")
    ],
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Directory of the embedded store (DIR/mlflow.db)."),
    ] = DEFAULT_DIR,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of tables.")
    ] = False,
) -> None:
    """The robustness summary of a study (verdicts, per arm and init, each arm vs the
    baseline) or of a suite (one sentence per comparison, a row per workload)."""
    from rich.console import Console

    from study.errors import HprobustError, StudyNotFoundError
    from study.records.store import StudyStore, sqlite_uri

    if not (Path(data_dir) / "mlflow.db").is_file():
        fail(f"no study store in {data_dir} (no mlflow.db); pass --data-dir", 2)
    store = StudyStore(sqlite_uri(data_dir))
    from study.records.ids import SUITE_ID_RE

    if SUITE_ID_RE.fullmatch(study_id):
        from study.cli.suite import print_suite

        try:
            print_suite(Console(), store, study_id, as_json=as_json)
        except StudyNotFoundError as exc:
            fail(f"{exc} in {data_dir}", 2)
        return
    try:
        record = store.get(study_id)
        result = store.summary(study_id)
    except StudyNotFoundError as exc:
        fail(f"{exc} in {data_dir}", 2)
    except HprobustError as exc:
        fail(f"cannot summarize study {study_id}: {exc}", 1)
    if as_json:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    from study.cli.tables import render

    render(
        result,
        Console(),
        header=styled(
            (record.id, "bold"),
            f"  {record.name}  (status: {record.status}, {record.total_trials} trials planned)",
        ),
    )
