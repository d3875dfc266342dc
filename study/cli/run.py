"""``hprobust run``, ``hprobust trials``: studies on the embedded default.

The embedded default keeps everything under one directory ``DIR`` (``--data-dir``, default
``./hprobust-data``): MLflow's SQLite store ``DIR/mlflow.db``, its artifacts
``DIR/mlartifacts``, Ray Tune's experiments ``DIR/ray_results`` and datasets
``DIR/datasets``. ``run`` starts a local Ray for the study (or joins ``--ray-address``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from study.cli.group import app
from study.cli.options import (
    DEFAULT_DIR,
    DataDir,
    ServiceToken,
    ServiceUrl,
    fail,
    plain,
    store_uri,
    warn,
)


@app.command()
def run(
    spec: Annotated[
        Path | None,
        typer.Argument(help="Study or suite spec (YAML); not needed with --resume."),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Resume the study with this id.")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Join this Ray cluster instead of starting a local one.")
    ] = None,
    num_cpus: Annotated[
        int | None,
        typer.Option(
            help="CPUs of the local Ray (default: what the study's trials take at once, "
            "max_concurrent_trials x cpus_per_trial, at most all; a resumed study: all)."
        ),
    ] = None,
) -> None:
    """Run a study or a suite (or resume a study): live progress, then a table per arm (a
    suite: one sentence per comparison and a row per workload)."""
    from study.runtime import configure_process

    configure_process()  # this process drives the study (study.driver.drive)
    from study.cli.output import console as make_console
    from study.errors import (
        ConfigError,
        DatasetNotFoundError,
        HprobustError,
        SpecError,
        StudyNotFoundError,
        StudyStateError,
    )
    from study.records.store import StudyStore
    from study.spec.bounds import SizeLimits, size_problems
    from study.spec.study_spec import load_spec

    console = make_console()
    if (spec is None) == (resume is None):
        fail("give a spec file to run, or --resume STUDY_ID (not both)", 2)
    from study.cli.suite import is_suite_file, run_suite

    if spec is not None and is_suite_file(spec):  # a suite: its studies one after another
        run_suite(spec, Path(data_dir), ray_address, num_cpus)
        return
    if spec is not None:
        try:
            parsed = load_spec(spec)  # validate before creating anything
            # the service's limits on a study's size, from the same HPROBUST_* variables
            problems = size_problems(parsed, SizeLimits.from_env())
            if problems:
                raise SpecError(problems, source=str(spec))
        except ConfigError as exc:  # SpecError, or a limit variable that is not a number
            fail(str(exc), 2)
    try:
        from study.runtime import trial_nice

        trial_nice()  # HPROBUST_TRIAL_NICE, read again by the driver: refused before anything
    except ConfigError as exc:
        fail(str(exc), 2)
    # A new SQLite store runs its migrations (seconds of CPU) in a thread while Ray starts
    # here (mostly waiting on its processes); the driver then finds Ray up, and this command
    # shuts it down at the end.
    from concurrent.futures import ThreadPoolExecutor

    import ray

    from study.driver import start_ray, stop_ray

    def _open() -> tuple[Any, Any]:
        if resume is None:
            # Before anything is recorded: the dataset is there (or downloadable now) and the
            # model runs; otherwise the study is refused with the error's own message.
            from study.tune.preflight import preflight

            preflight(parsed, data_dir=Path(data_dir) / "datasets")
        from study.records.signing import SECRET_ENV, service_secret

        # signed with the data dir's secret, like `hprobust serve` on the same data dir
        secret = service_secret(os.environ.get(SECRET_ENV), data_dir)
        store = StudyStore(store_uri(data_dir), secret=secret)
        if resume is not None:
            return store, store.get(resume)
        return store, store.get(store.create_study(parsed).id)

    owns_ray = not ray.is_initialized()  # a caller's Ray stays up
    temp_dir = None
    if owns_ray and ray_address is None and not os.environ.get("RAY_ADDRESS"):
        from study.runtime import configure_local_ray

        configure_local_ray()  # before its Ray starts: the workers import torch as they start
        if num_cpus is None and resume is None:  # the CPUs the study's trials can use
            from study.tune.cluster import local_ray_cpus

            num_cpus = local_ray_cpus(parsed)
    stopping: threading.Thread | None = None

    def trials_done() -> None:
        """Every trial is recorded: the local Ray this command started stops while the
        summary and the plots are made (they need no Ray), instead of after them."""
        nonlocal stopping
        if temp_dir is not None and stopping is None:
            stopping = threading.Thread(target=stop_ray, args=(temp_dir,), name="ray-stop")
            stopping.start()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hprobust-store") as pool:
        opening = pool.submit(_open)
        try:
            if owns_ray and ray_address is None and not os.environ.get("RAY_ADDRESS"):
                temp_dir = start_ray(None, num_cpus=num_cpus)
        finally:
            exc = opening.exception()  # waits for the store
    try:
        if isinstance(exc, StudyNotFoundError):
            fail(f"{exc} in {data_dir}", 2)
        if isinstance(exc, DatasetNotFoundError | ConfigError):
            fail(f"the study cannot run, nothing was recorded: {exc}", 2)
        store, record = opening.result()
        study_id = record.id
        console.print(f"study {study_id}", highlight=False)
        for warning in parsed.design_warnings() if spec is not None else []:
            warn(console, warning)

        try:
            summary = _run_with_progress(
                console, store, record, data_dir, resume, ray_address, num_cpus, trials_done
            )
        except (StudyStateError, StudyNotFoundError) as exc:
            fail(str(exc), 2)
        except KeyboardInterrupt:
            fail(
                f"study {study_id} cancelled; resume it with: hprobust run --resume {study_id}",
                130,
            )
        except HprobustError as exc:
            fail(f"study {study_id} failed: {exc}")
        except Exception as exc:  # Ray, MLflow: the study is recorded failed with this text
            fail(f"study {study_id} failed: {type(exc).__name__}: {exc}")
    finally:
        if stopping is not None:
            stopping.join()
        elif owns_ray and ray.is_initialized():
            stop_ray(temp_dir)
    from study.cli.tables import render

    render(summary, console)
    progress = store.progress(study_id)
    console.print(
        f"{progress['finished']}/{progress['total']} finished, {progress['diverged']} diverged, "
        f"{progress['failed']} failed",
        highlight=False,
    )
    console.print(
        f"trials: hprobust trials {study_id} --data-dir {data_dir}\n"
        f"browse: hprobust ui --data-dir {data_dir}",
        highlight=False,
    )
    status = store.get(study_id).status
    if status != "finished":
        fail(f"study {study_id} ended {status}")
    if progress["failed"] and not progress["finished"]:
        rows = [r for r in store.trials(study_id) if r["status"] == "failed"]
        first = (rows[0].get("error") or "").strip().splitlines()[-1:] if rows else []
        fail(
            f"study {study_id}: every trial failed"
            + (f" (first error: {first[0]})" if first else "")
            + f"; see hprobust trials {study_id} --data-dir {data_dir}"
        )


def _run_with_progress(
    console: Any,
    store: Any,
    record: Any,
    data_dir: Path,
    resume: str | None,
    ray_address: str | None,
    num_cpus: int | None,
    trials_done: Callable[[], None] | None = None,
) -> dict[str, Any]:
    from study.cli.output import ProgressView
    from study.cli.progress import progress_text
    from study.driver import drive
    from study.eta import Eta

    total = record.total_trials
    arms = [arm["name"] for arm in record.spec["arms"]]
    concurrency = int(record.spec.get("resources", {}).get("max_concurrent_trials", 2))
    eta = Eta(total, window=max(4, 2 * concurrency))
    with ProgressView(console, "trials", total=total) as bar:
        bar.update(0, text="starting")

        def update(state: dict[str, Any]) -> None:
            done = state["finished"] + state["failed"]
            left = eta.update(done)
            info = progress_text(state, eta_s=left, best=state.get("best"), arms=arms)
            bar.update(done, text=info, key=progress_text(state))

        return drive(
            record.id,
            tracking_uri=store.tracking_uri,
            storage=str(Path(data_dir) / "ray_results"),
            data_dir=str(Path(data_dir) / "datasets"),
            resume=resume is not None,
            progress=update,
            ray_address=ray_address,
            num_cpus=num_cpus,
            secret=store.secret,
            trials_done=trials_done,
        )


def _fmt(value: Any, spec: str) -> str:
    from study.analysis.present import MISSING

    return MISSING if value is None else format(value, spec)


@app.command()
def trials(
    study_id: Annotated[str, typer.Argument(help="The study id (printed by hprobust run).")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Read this embedded store (default: the service when one is configured, "
            "else ./hprobust-data).",
        ),
    ] = None,
    url: ServiceUrl = None,
    token: ServiceToken = None,
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """One row per trial: arm, lr, init, init_scale, seed, val_acc, val_loss, diverged, status.

    Asks the service when one is configured (--url, HPROBUST_URL, or the URL a running
    hprobust serve recorded), else reads the embedded store (--data-dir)."""
    import json

    from study.analysis.rows import TRIAL_FIELDS
    from study.cli.source import open_source
    from study.errors import HprobustError, StudyNotFoundError
    from study.records.formats import trials_csv

    if format not in ("table", "csv", "json"):
        fail(f"--format must be one of table, csv, json, got {format!r}", 2)
    source = open_source(data_dir, url, token)
    try:
        rows = source.trials(study_id)
    except StudyNotFoundError as exc:
        fail(f"{exc} {source.where}", 2)
    except HprobustError as exc:
        fail(f"cannot read the trials of study {study_id}: {exc}", 1)
    if format == "csv":
        typer.echo(trials_csv(rows), nl=False)
        return
    if format == "json":
        typer.echo(json.dumps([{k: row.get(k) for k in TRIAL_FIELDS} for row in rows], indent=2))
        return
    from rich.table import Table

    from study.cli.output import console

    table = Table(title=plain(f"trials of {study_id}"))
    for column in TRIAL_FIELDS:
        table.add_column(column, no_wrap=True)
    for row in rows:  # recorded values are user text: no markup is read from them
        cells = (
            row["arm"],
            _fmt(row.get("lr"), ".4g"),
            row.get("init"),
            _fmt(row.get("init_scale"), ".3g"),
            str(row.get("seed")),
            _fmt(row.get("val_acc"), ".4f"),
            _fmt(row.get("val_loss"), ".4f"),
            str(row.get("diverged")).lower(),
            row["status"],
        )
        table.add_row(*(plain(cell) for cell in cells))
    console().print(table)
