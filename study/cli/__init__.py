"""The study commands of the ``hprobust`` command line: ``run``, ``trials``, ``summary``,
``demo``. They need the study layer only (a local Ray, the MLflow store, a model).

This package knows nothing of the service: the root command (:mod:`hprobust.cli`) composes
these commands with the service's (:mod:`service.cli`). Each command lives in its own module
and registers itself on :data:`app`; heavy imports stay inside the command functions so
``--help`` is instant.
"""

from __future__ import annotations

import typer

# No name and no callback: the root command merges these commands into its own group.
app = typer.Typer(
    help="Study commands: run, trials, summary, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules register themselves on ``app`` when imported.
from study.cli import commands  # noqa: E402,F401
