"""The ``hprobust`` command line. Each command lives in its own module and registers itself
on :data:`app`; heavy imports stay inside the command functions so ``--help`` is instant."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hprobust",
    help="Hyperparameter-robustness studies: learning rate x initialization, SGD vs INSGD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules register themselves on ``app`` when imported.
from study.cli import commands  # noqa: E402,F401
