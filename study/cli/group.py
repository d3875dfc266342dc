"""The command group :data:`app` the study's commands register themselves on."""

from __future__ import annotations

import typer

# No name and no callback: the root command merges these commands into its own group.
app = typer.Typer(
    help="Study commands: run, trials, summary, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
