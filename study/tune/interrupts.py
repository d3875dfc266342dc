"""Ctrl-C and SIGTERM in a study driver: a cancel that never tears a record.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when a signal
arrives. In a driver that is often inside an MLflow call, in the middle of SQLAlchemy, and an
exception there is not safe: with a SQLite store, a read interrupted between executing its
SELECT and reading its rows keeps its statement open, and with it SQLite's shared lock, for
as long as the traceback lives, so the cancel's own write, made while handling that very
exception, waits 20 s and fails ``database is locked``: the study ended ``failed`` (exit 1),
not ``cancelled``, with its trial runs left open. Interrupting MLflow writes at random points
also turned the interrupt into ``MlflowException: This transaction is closed`` and left locks
behind after the exception was gone.

So inside :func:`deferred` a signal is *held*: the handler notes it and returns, and the
driver raises ``KeyboardInterrupt("signal N")`` at points where it holds no record:

- :func:`deliver`, between two steps of Ray Tune's loop (every store write of a step is done);
- inside :func:`interruptible` blocks, the long waits that touch no record (starting Ray,
  loading a dataset): a held signal is raised on entry and a new one raises at once.

A library may set handlers of its own (``ray.init`` sets SIGTERM to ``sys.exit``): the driver
calls :func:`reclaim` after it. A second signal while one is held raises at once, wherever
the driver is: the way out of a hung write (the service records the study ``cancelled``
itself after stopping its job). A signal held when the block ends is dropped: the work it
wanted to stop is done.

Signals are delivered to the main thread only, so only the main thread counts here: called
from another thread, :func:`interruptible` and :func:`deliver` do nothing. Importing this
module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: The signals a driver takes as "cancel the study".
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Written to stderr when a signal is held (on a line of its own: a progress bar may be drawing).
HELD_MESSAGE = "\ninterrupt: stopping at the next safe point; send it again to stop at once\n"


class _Gate:
    """The process's one gate: signal handlers are process-wide, so is what they share."""

    def __init__(self) -> None:
        self.signals: tuple[int, ...] = ()  # the signals deferred() took
        self.open = 0  # depth of interruptible() blocks
        self.held: int | None = None  # the signal waiting for a safe point

    def handle(self, signum: int, frame: Any) -> None:
        if self.open or self.held is not None:
            self.held = None
            raise KeyboardInterrupt(f"signal {signum}")
        self.held = signum
        with contextlib.suppress(OSError):  # no Python stream: it may be mid-write
            os.write(2, HELD_MESSAGE.encode())


_GATE = _Gate()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs: each raises ``KeyboardInterrupt`` only at
    :func:`deliver` or inside :func:`interruptible`, or at once when a second one comes.

    The previous handlers are back afterwards; a SIGINT that the process ignores
    (``SIG_IGN``: a background job of a shell) stays ignored. Main thread only (Python's
    rule for ``signal.signal``).

    Example::

        with deferred():
            with interruptible():
                load_the_dataset()  # Ctrl-C stops this at once
            for step in steps:
                write_records(step)  # a Ctrl-C here is held...
                deliver()  # ...and raised here
    """
    previous = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _GATE.handle)
    saved = (_GATE.signals, _GATE.open, _GATE.held)
    _GATE.signals, _GATE.open, _GATE.held = tuple(previous), 0, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _GATE.signals, _GATE.open, _GATE.held = saved


def reclaim() -> None:
    """Inside :func:`deferred`, take back the signals a library gave handlers of its own:
    ``ray.init`` sets SIGTERM to ``sys.exit``, which would end the driver wherever it is (the
    study recorded ``failed``, its open trials closed as ``study failed``)."""
    if _main_thread():
        for signum in _GATE.signals:
            signal.signal(signum, _GATE.handle)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """A block that holds no record: a held signal is raised as it starts, and a signal that
    comes while it runs raises ``KeyboardInterrupt`` at once. Outside :func:`deferred` (or in
    another thread) it changes nothing."""
    if not _main_thread():
        yield
        return
    _GATE.open += 1
    try:
        deliver()
        yield
    finally:
        _GATE.open -= 1


def deliver() -> None:
    """Raise the held signal as ``KeyboardInterrupt("signal N")`` now, if there is one: call
    it where the driver holds no record."""
    if _main_thread() and _GATE.held is not None:
        signum, _GATE.held = _GATE.held, None
        raise KeyboardInterrupt(f"signal {signum}")
