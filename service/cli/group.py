"""The command group :data:`app` the service's commands register themselves on."""

from __future__ import annotations

import typer

# No name and no callback: the root command merges these commands into its own group.
app = typer.Typer(
    help="Service commands: serve, submit, ui.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
