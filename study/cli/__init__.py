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


@app.callback()
def _main() -> None:
    """Hyperparameter-robustness studies: learning rate x initialization, SGD vs INSGD."""
    # A callback keeps ``hprobust <command>`` a command group even while only one command
    # is registered (typer would otherwise run that command as the root).


# Command modules register themselves on ``app`` when imported.
from study.cli import commands  # noqa: E402,F401
