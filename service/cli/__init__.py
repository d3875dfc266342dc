"""The service's commands of the ``hprobust`` command line: ``serve`` (the embedded stack and
the API), ``submit`` (a client of a running API) and ``ui`` (the MLflow UI on the store).

They live beside the service they start or call; the root command (:mod:`hprobust.cli`)
composes them with the study commands (:mod:`study.cli`). Heavy imports stay inside the
command functions so ``--help`` is instant.
"""

from __future__ import annotations

import typer

# No name and no callback: the root command merges these commands into its own group.
app = typer.Typer(
    help="Service commands: serve, submit, ui.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules register themselves on ``app`` when imported.
from service.cli import serve, ui  # noqa: E402,F401
