"""Finite numbers: the one check of whether a value is a finite real number."""

from __future__ import annotations

import math
import numbers
from typing import Any


def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number, else None (a bool, text, NaN,
    an infinity and anything else that is not a number are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
