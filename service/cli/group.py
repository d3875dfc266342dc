"""The command group :data:`app` the service's commands register themselves on (their
unexpected errors are one line and exit code 2: :class:`study.cli.group.GuardedCommand`)."""

from __future__ import annotations

from study.cli.group import GuardedTyper

# No name and no callback: the root command merges these commands into its own group.
app = GuardedTyper(
    help="Service commands: serve, submit, studies, status, cancel, resume, report, doctor, ui.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
