"""``hprobust summary STUDY_ID``: the robustness summary of a study, as tables or JSON.

Asks the service when one is configured (``--url``, ``HPROBUST_URL``, or the URL a running
``hprobust serve`` recorded: :mod:`study.cli.source`), else reads the embedded store
``DIR/mlflow.db`` (``--data-dir``, default ``./hprobust-data``). A finished study shows its
stored ``summary.json`` (one stored by an older version is recomputed from its trials); a
study still running shows one computed now from its finished trials, marked PARTIAL, its
numbers provisional and every verdict pending; a stopped one (cancelled, failed) is
summarized from the trials it finished, with verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from study.cli.group import app
from study.cli.options import ServiceToken, ServiceUrl, fail, styled


@app.command()
def summary(
    study_id: Annotated[
        str, typer.Argument(help="The study or suite id (printed by hprobust run).")
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Read this embedded store (DIR/mlflow.db; default: the service when one is "
            "configured, else ./hprobust-data).",
        ),
    ] = None,
    url: ServiceUrl = None,
    token: ServiceToken = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (as --format json).")
    ] = False,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The robustness summary of a study (verdicts, per arm and init, each arm vs the
    baseline) or of a suite (one sentence per comparison, a row per workload)."""
    from study.cli.output import console
    from study.cli.source import open_source
    from study.errors import HprobustError, StudyNotFoundError

    if format not in ("table", "json"):
        fail(f"--format must be one of table, json, got {format!r}", 2)
    source = open_source(data_dir, url, token)
    from study.records.ids import SUITE_ID_RE

    if SUITE_ID_RE.fullmatch(study_id):
        from study.cli.suite import print_suite

        try:
            print_suite(
                console(), source.suite_summary(study_id), as_json=as_json or format == "json"
            )
        except StudyNotFoundError as exc:
            fail(f"{exc} {source.where}", 2)
        except HprobustError as exc:
            fail(f"cannot summarize suite {study_id}: {exc}", 1)
        return
    try:
        record = source.study(study_id)
        result = source.summary(study_id)
    except StudyNotFoundError as exc:
        fail(f"{exc} {source.where}", 2)
    except HprobustError as exc:
        fail(f"cannot summarize study {study_id}: {exc}", 1)
    if as_json or format == "json":
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    from study.cli.tables import render

    render(
        result,
        console(),
        header=styled(
            (record["id"], "bold"),
            f"  {record['name']}  (status: {record['status']}, "
            f"{record['total_trials']} trials planned)",
        ),
    )
