"""How the commands print for a terminal and for a pipe or a log.

On a terminal the output is rich's: tables fitted to the window, a progress bar redrawn in
place. Without one (``| cat``, a CI log, a file) nothing is fitted to an 80-column guess:
:func:`console` prints at full width, so a URL, a table cell or a verdict is never broken
over lines, and :class:`ProgressView` prints one plain line each time the progress changes
instead of redrawing a bar.
"""

from __future__ import annotations

import time
from typing import Any

#: The width of a console that writes to no terminal: wide enough that no line is wrapped.
UNWRAPPED = 100_000


def console(*, stderr: bool = False) -> Any:
    """A rich ``Console`` for stdout (or stderr): the terminal's width on a terminal, else
    :data:`UNWRAPPED` (no URL, cell or sentence wrapped; no colour, as rich does off a
    terminal)."""
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False)
    if out.is_terminal:
        return out
    return Console(stderr=stderr, highlight=False, width=UNWRAPPED)


class ProgressView:
    """A study's progress: a rich bar redrawn in place on a terminal; elsewhere one line
    ``<label> <done>/<total> · <text>`` per change (a change of ``done``, ``total`` or the
    ``key`` given with the text: the time left alone is no change)."""

    def __init__(self, console: Any, label: str, *, total: int | None = None) -> None:
        self.console, self.label, self.total = console, label, total
        self.live = bool(console.is_terminal)
        self._bar: Any = None
        self._task: Any = None
        self._last: tuple[Any, ...] | None = None
        self._start = time.monotonic()

    def __enter__(self) -> ProgressView:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}", markup=False),
                console=self.console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def update(
        self, done: int, *, total: int | None = None, text: str = "", key: str | None = None
    ) -> None:
        """Show ``done`` of ``total`` with ``text``; off a terminal, print a line only when
        ``(done, total, key)`` changed (``key`` defaults to ``text``)."""
        from study.text import shown

        if total is not None:
            self.total = total
        text = shown(text)  # arm names, server text: user text
        if self.live:
            self._bar.update(self._task, total=self.total, completed=done, info=text)
            return
        state = (done, self.total, text if key is None else key)
        if state == self._last:
            return
        self._last = state
        from study.eta import format_duration

        elapsed = format_duration(time.monotonic() - self._start)
        of = f"{done}/{self.total}" if self.total is not None else str(done)
        line = " · ".join(part for part in (f"{self.label} {of}", f"{elapsed} in", text) if part)
        from rich.text import Text

        self.console.print(Text(line), highlight=False, soft_wrap=True)
