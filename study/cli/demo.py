"""``hprobust demo``: one short training trial with a live progress line, then its results.

By default: ``digits`` (bundled with scikit-learn, no download) with ``toy_cnn`` of width 16,
8 epochs (about 10 s on 2 cores, start-up included),
lr 0.05, batch 64, cosine schedule, kaiming_normal init, momentum 0.9, weight decay 5e-4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from study.cli.group import app
from study.cli.options import styled
from study.data.registry import DATASET_KINDS
from study.optim.registry import OPTIMIZERS, optimizer_hparams
from study.spec.options import SCHEDULE_KINDS

#: The demo's toy_cnn width (the model's own default, a study's, is 32: models/toy_cnn.py).
DEMO_WIDTH = 16


def _names(names: list[str] | tuple[str, ...]) -> str:
    """``a, b or c``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


#: The optimizers with a momentum hyperparameter (the registry says which).
_WITH_MOMENTUM = [name for name in OPTIMIZERS if "momentum" in optimizer_hparams(name)]


@app.command()
def demo(
    optimizer: Annotated[
        str, typer.Option(help=f"Optimizer: {_names(tuple(OPTIMIZERS))}.")
    ] = "insgd",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    lr: Annotated[float, typer.Option(help="Base learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    momentum: Annotated[
        float,
        typer.Option(help=f"Momentum (optimizers that have one: {', '.join(_WITH_MOMENTUM)})."),
    ] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 5e-4,
    init: Annotated[str, typer.Option(help="Weight initialization scheme.")] = "kaiming_normal",
    init_scale: Annotated[float, typer.Option(help="Multiplier of the init's weights.")] = 1.0,
    schedule: Annotated[str, typer.Option(help=f"{_names(SCHEDULE_KINDS)}.")] = "cosine",
    seed: Annotated[int, typer.Option(help="Seed of the trial.")] = 0,
    dataset: Annotated[str, typer.Option(help=f"Dataset: {_names(DATASET_KINDS)}.")] = "digits",
    model: Annotated[str, typer.Option(help="Model name.")] = "toy_cnn",
    width: Annotated[
        int | None,
        typer.Option(
            help=f"Width option of the model. The demo's toy_cnn: {DEMO_WIDTH}, for speed (in a "
            "study spec toy_cnn's default is 32); other models: their own default."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 or bf16 (bf16 on CUDA only).")] = "fp32",
    num_threads: Annotated[
        int | None,
        typer.Option(help="CPU threads for the trial (default 1: a small model runs fastest so)."),
    ] = 1,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory of downloadable datasets (default $HPROBUST_DATA_DIR or "
            "./hprobust-data/datasets); digits needs none."
        ),
    ] = None,
) -> None:
    """Train one model once and show its progress live: the quickest check that it all works."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from study.errors import ConfigError, DatasetNotFoundError
    from study.spec.trial_config import TrialConfig
    from study.train.trial import train_trial

    console = Console()
    try:
        valid = optimizer_hparams(optimizer)
    except ConfigError as exc:
        console.print(styled(("error:", "red"), f" {exc}"), highlight=False)
        raise typer.Exit(code=2) from None
    hparams = {"momentum": momentum, "weight_decay": weight_decay}
    config = {
        "dataset": dataset,
        "model": {"name": model, **_width(model, width)},
        "optimizer": {
            "optimizer": optimizer,
            **{k: v for k, v in hparams.items() if k in valid},
        },
        "lr": lr,
        "init": init,
        "init_scale": init_scale,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "schedule": schedule,
        "precision": precision,
        "device": device,
        "data_dir": None if data_dir is None else str(data_dir),
        "num_threads": num_threads,
    }
    try:
        config = TrialConfig.from_mapping(config)
    except ConfigError as exc:
        console.print(styled(("error:", "red"), f" {exc}"), highlight=False)
        raise typer.Exit(code=2) from None

    title = f"{dataset} / {model} / {optimizer} lr={lr:g}"
    console.print(styled(("demo:", "bold"), f" {title}, {epochs} epochs"), highlight=False)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )

    def report(m: dict) -> None:
        stats = (
            f"train_loss {_fmt(m['train_loss'])}  val_acc {m['val_acc']:.4f}  lr {m['lr']:.4g}"
            + ("  [red]DIVERGED[/red]" if m["diverged"] else "")
        )
        progress.update(task, completed=m["epoch"], stats=stats)
        progress.console.print(
            f"epoch {m['epoch']}/{epochs}  {stats}  ({m['epoch_time_s']:.2f} s)", highlight=False
        )

    try:
        with progress:
            task = progress.add_task("epoch", total=epochs, stats="")
            result = train_trial(config, report=report)
    except ConfigError as exc:
        console.print(styled(("error:", "red"), f" {exc}"), highlight=False)
        raise typer.Exit(code=2) from None
    except DatasetNotFoundError as exc:
        console.print(styled(("dataset not found:", "red"), f" {exc}"), highlight=False)
        raise typer.Exit(code=1) from None

    table = Table(title="result")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "val_acc",
        "best_val_acc",
        "val_loss",
        "train_loss",
        "diverged",
        "epochs_completed",
        "wall_time_s",
        "device",
        "precision_used",
        "num_params",
    ):
        table.add_row(key, _fmt(result[key]))
    console.print(table)


def _width(model: str, width: int | None) -> dict[str, int]:
    """The model's ``width`` option: as given, else :data:`DEMO_WIDTH` for toy_cnn (fast)."""
    if width is not None:
        return {"width": width}
    return {"width": DEMO_WIDTH} if model == "toy_cnn" else {}


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
