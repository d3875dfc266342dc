"""A trial row: its fields, and how a recorded value becomes a row value, written once.

A trial row (docs/summary.md, "Words") is a mapping with ``arm, lr, init, init_scale, seed,
val_acc, val_loss, diverged, status``. Values may arrive as text: MLflow gives params and tags
back as strings, and rows read from a CSV file are all strings. The store maps an MLflow trial
run to a row with these rules (:func:`study.records.layout.trial_row`); the analysis applies
the same rules to every row it is given, the store's or a caller's (a list of dicts, a
DataFrame), and then checks what a finished row must have
(:func:`study.analysis.table.build_table`).

Each rule returns None for a value it cannot read; the caller decides whether that is an
error (the analysis: a finished row's field) or an absent value (the store: a trial still
running has no accuracy yet). Importing this module imports only the standard library.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from study.numbers import to_float
from study.vocab import TrialStatus

#: The columns of a trial row, in the order docs/summary.md gives them (``trials.csv``,
#: ``hprobust trials``).
TRIAL_FIELDS = (
    "arm",
    "lr",
    "init",
    "init_scale",
    "seed",
    "val_acc",
    "val_loss",
    "diverged",
    "status",
)
#: ``init_scale`` of a row without one (a study that does not search init scales).
DEFAULT_INIT_SCALE = 1.0

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


def missing(value: Any) -> bool:
    """None, or NaN (how pandas writes an empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def to_int(value: Any) -> int | None:
    """An integer, from an integral number or its text (``"3"``, ``3.0``); None else."""
    number = to_float(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def to_bool(value: Any) -> bool | None:
    """A flag (``diverged``): missing is False; a bool, 0 or 1, or text such as
    ``true``/``false``/``yes``/``no``; None for anything else."""
    if missing(value):
        return False
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return bool(value)  # a bool, or numpy's
    if isinstance(value, Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def to_status(value: Any) -> str | None:
    """A trial status word: missing is ``finished`` (a row without a status ran to its
    end); None for a word that is not a :class:`~study.vocab.TrialStatus`."""
    if missing(value):
        return str(TrialStatus.FINISHED)
    return str(value) if TrialStatus.has(str(value)) else None
