"""``hprobust run SUITE.yaml`` and ``hprobust summary SUITE_ID``: suites on the embedded default.

A suite file (a document with ``workloads``: docs/suites.md) is validated whole (every
workload as a study, the size limits per workload and in total) before anything is recorded;
then the suite and all its studies are recorded in ``DIR/mlflow.db`` (all or none) and the
studies run one after another in workload order, in this process, under one progress bar over
all the suite's trials. At the end the suite's sentences are printed, one per comparison.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from study.cli.options import fail, plain, store_uri, warn


def is_suite_file(path: Path) -> bool:
    """Whether ``path`` holds a suite (a YAML mapping with ``workloads``); False when it cannot
    be read or parsed (the study path then says why)."""
    from study.bounded import BoundedInputError, load_yaml
    from study.spec.suite import is_suite

    try:
        return is_suite(load_yaml(Path(path).read_text()))
    except (OSError, BoundedInputError, UnicodeDecodeError):
        return False


def run_suite(path: Path, data_dir: Path, ray_address: str | None, num_cpus: int | None) -> None:
    """Validate, record and run the suite in ``path`` (module doc); exits non-zero when a
    study did not finish."""
    from rich.console import Console

    from study.errors import ConfigError, DatasetNotFoundError, HprobustError, SpecError
    from study.records.signing import SECRET_ENV, service_secret
    from study.records.store import StudyStore
    from study.records.suites import SuiteStore
    from study.spec.bounds import SizeLimits
    from study.spec.suite import load_suite, suite_size_problems
    from study.vocab import StudyStatus

    console = Console()
    try:
        suite = load_suite(path)
        problems = suite_size_problems(suite, SizeLimits.from_env())
        if problems:
            raise SpecError(problems, source=str(path))
    except ConfigError as exc:
        fail(str(exc), 2)
    from study.tune.preflight import preflight

    try:
        for w in suite.workloads:
            preflight(w.spec, data_dir=Path(data_dir) / "datasets")
    except (DatasetNotFoundError, ConfigError) as exc:
        fail(f"the suite cannot run, nothing was recorded: {exc}", 2)
    secret = service_secret(os.environ.get(SECRET_ENV), data_dir)
    store = StudyStore(store_uri(data_dir), secret=secret)
    record, _ = SuiteStore(store).create_suite(suite)
    console.print(plain(f"suite {record.id}: {len(record.studies)} workloads"))
    for workload, study_id in record.studies:
        console.print(plain(f"  {workload}: study {study_id}"))
    for warning in suite.design_warnings():
        warn(console, warning)

    import ray

    from study.driver import start_ray, stop_ray

    owns_ray = not ray.is_initialized()
    temp_dir = None
    if owns_ray and ray_address is None and not os.environ.get("RAY_ADDRESS"):
        temp_dir = start_ray(None, num_cpus=num_cpus)
    try:
        _run_studies(console, store, record, suite.total_trials, data_dir, ray_address, num_cpus)
    except KeyboardInterrupt:
        for _, study_id in record.studies:  # those not started: nothing will run them here
            if store.get(study_id).status == StudyStatus.QUEUED:
                store.set_status(
                    study_id, StudyStatus.CANCELLED, reason="hprobust run was interrupted"
                )
        fail(f"suite {record.id} cancelled (resume a study: hprobust run --resume ID)", 130)
    except HprobustError as exc:
        fail(f"suite {record.id} failed: {exc}")
    finally:
        if owns_ray and ray.is_initialized():
            stop_ray(temp_dir)
    print_suite(console, suite_summary_of(store, record.id))
    statuses = [store.get(study_id).status for _, study_id in record.studies]
    if any(s != StudyStatus.FINISHED for s in statuses):
        fail(f"suite {record.id}: not every study finished ({', '.join(statuses)})")
    console.print(plain(f"summary: hprobust summary {record.id} --data-dir {data_dir}"))


def _run_studies(
    console: Any,
    store: Any,
    record: Any,
    total: int,
    data_dir: Path,
    ray_address: str | None,
    num_cpus: int | None,
) -> None:
    """Each study in workload order, under one progress bar over the suite's trials."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from study.driver import drive
    from study.text import shown

    columns = (
        TextColumn("[bold]suite trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}", markup=False),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("trials", total=total, info="starting")
        before = 0
        for i, (workload, study_id) in enumerate(record.studies):
            label = shown(f"{workload} ({i + 1}/{len(record.studies)})")

            def update(state: dict[str, Any], base: int = before, label: str = label) -> None:
                done = state["finished"] + state["failed"]
                bar.update(task, completed=base + done, info=f"{label}: {done} done")

            try:
                drive(
                    study_id,
                    tracking_uri=store.tracking_uri,
                    storage=str(Path(data_dir) / "ray_results"),
                    data_dir=str(Path(data_dir) / "datasets"),
                    progress=update,
                    ray_address=ray_address,
                    num_cpus=num_cpus,
                    secret=store.secret,
                )
            except Exception as exc:  # the study is recorded failed; the next one runs
                console.print(plain(f"study {study_id} ({workload}) failed: {exc}"))
            before += store.get(study_id).total_trials


def suite_summary_of(store: Any, suite_id: str) -> Any:
    """The SuiteSummary of a recorded suite, from its studies' own summaries."""
    from study.analysis.suite import WorkloadResult, summarize_suite
    from study.records.suites import SuiteStore

    record = SuiteStore(store).get_suite(suite_id)
    workloads = []
    for workload, study_id in record.studies:
        study = store.get(study_id)
        workloads.append(WorkloadResult(workload, study_id, study.status, store.summary(study_id)))
    return summarize_suite(workloads, arms=record.arms, suite_id=record.id, name=record.name)


def print_suite(console: Any, summary: Any, *, as_json: bool = False) -> None:
    """A suite's sentences and per-workload table (or its ``summary`` as JSON)."""
    if as_json:
        import typer

        typer.echo(summary.model_dump_json(indent=2))
        return
    from rich.table import Table

    from study.analysis.suite_present import suite_lines, workload_rows

    console.print(plain(f"suite {summary.suite_id}  {summary.name}", "bold"))
    for line in suite_lines(summary):
        console.print(plain(line))
    for warning in summary.warnings:
        warn(console, warning)
    headers, rows = workload_rows(summary)
    table = Table()
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*(plain(cell) for cell in row))
    console.print(table)
