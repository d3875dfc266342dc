"""What the commands on the embedded store share: its default directory, the ``--data-dir``
option, its tracking URI, how user text is printed and the one way a command fails (a red
line on stderr, an exit code).

Used by the study commands here and by the service's (``hprobust ui`` in :mod:`service.cli`),
so that both spell the option and the error alike.

User text (a study name, a spec's key, an error that quotes either, anything a server sent)
is never printed as rich markup: :func:`plain` makes it a rich ``Text`` (``[link=...]`` or
``[/x]`` stay as typed) with unsafe characters written as escapes (:func:`study.text.shown`);
:func:`styled` puts styled labels of our own beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

DEFAULT_DIR = Path("hprobust-data")

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", help="Directory of the embedded store (mlflow.db, mlartifacts, ...)."
    ),
]

ServiceUrl = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The service's API (env HPROBUST_URL; default: the URL a running hprobust serve "
        "recorded).",
        envvar="HPROBUST_URL",
    ),
]
ServiceToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token of the service (env HPROBUST_API_TOKEN, as hprobust serve reads it).",
        envvar="HPROBUST_API_TOKEN",
    ),
]


def store_uri(data_dir: Path) -> str:
    """The tracking URI of the embedded store in ``data_dir`` (``DIR/mlflow.db``)."""
    from study.records.store import sqlite_uri

    return sqlite_uri(data_dir)


def plain(text: Any, style: str = "") -> Text:
    """``text`` (user text) as a rich ``Text``: no markup is read from it, and characters user
    text must not hold (control, bidi, zero-width) are written as escapes."""
    from rich.text import Text

    from study.text import shown

    return Text(shown(str(text)), style=style)


def styled(*parts: Any) -> Text:
    """One line from ``parts``: each a string of user text (:func:`plain`), a ``(text,
    style)`` pair (our own label, e.g. ``("error:", "bold red")``) or a rich ``Text`` made
    so already; joined as they are."""
    from rich.text import Text

    line = Text()
    for part in parts:
        if isinstance(part, Text):
            line.append_text(part)
        else:
            line.append_text(plain(*part) if isinstance(part, tuple) else plain(part))
    return line


def warn(console: Any, message: str) -> None:
    """Print ``warning: message`` (message: plain text)."""
    console.print(styled(("warning:", "yellow"), " ", message), highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (message: plain text, never markup) and exit with
    ``code``."""
    from study.cli.output import console

    # unwrapped off a terminal: a log holds the whole message on one line
    console(stderr=True).print(styled(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(code)
