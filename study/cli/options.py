"""What the commands on the embedded store share: its default directory, the ``--data-dir``
option, its tracking URI and the one way a command fails (a red line on stderr, an exit code).

Used by the study commands here and by the service's (``hprobust ui`` in :mod:`service.cli`),
so that both spell the option and the error alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

DEFAULT_DIR = Path("hprobust-data")

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", help="Directory of the embedded store (mlflow.db, mlartifacts, ...)."
    ),
]


def store_uri(data_dir: Path) -> str:
    """The tracking URI of the embedded store in ``data_dir`` (``DIR/mlflow.db``)."""
    from study.records.store import sqlite_uri

    return sqlite_uri(data_dir)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
