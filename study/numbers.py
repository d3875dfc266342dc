"""Numbers read from anywhere (a result, an MLflow param stored as text, a CSV cell): the one
rule of what counts as a number and as a finite one."""

from __future__ import annotations

import math
from typing import Any


def to_float(value: Any) -> float | None:
    """A number, from a number or its text (NaN and infinities included); None for anything
    else (a bool is not a number here)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def finite(value: Any) -> float | None:
    """:func:`to_float`, None unless finite (a loss that diverged, a metric that is not a
    result)."""
    number = to_float(value)
    return number if number is not None and math.isfinite(number) else None
