"""The command group :data:`app` the study's commands register themselves on, and the command
class every hprobust command uses (:class:`GuardedCommand`: an unexpected error is one line
and exit code 2, never a traceback)."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperCommand

#: Exceptions that already are a command's way out (typer's and click's exits, usage errors,
#: aborts, a closed pipe): they pass through :class:`GuardedCommand` unchanged.
EXITS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    click.exceptions.Exit,
    click.ClickException,
    click.Abort,
    EOFError,
    BrokenPipeError,
)


def one_line(exc: BaseException) -> str:
    """``<Type>: <first line of the message>`` (`` (...)`` when there were more lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text + (" (...)" if len(lines) > 1 else "")


class GuardedCommand(TyperCommand):
    """A command whose unexpected exception (a bug, an error no branch of the command
    expected) ends it with one line ``error: <Type>: <message>`` on stderr and exit code 2,
    not a traceback. Known errors keep their own codes: the command's own ``typer.Exit``,
    click's usage errors and aborts pass through."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EXITS:
            raise
        except Exception as exc:
            from study.cli.options import fail

            fail(one_line(exc), 2)


class GuardedTyper(typer.Typer):
    """A ``typer.Typer`` whose commands are :class:`GuardedCommand` unless told otherwise."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or GuardedCommand, **kwargs)


# No name and no callback: the root command merges these commands into its own group.
app = GuardedTyper(
    help="Study commands: run, trials, summary, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
