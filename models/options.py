"""Checks for model options: each raises ``ValueError`` naming the model, the option, the rule
and the value it got."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class ModelOptionError(ValueError):
    """A model option breaks a rule; ``model``, ``option``, ``rule`` and ``value`` say how."""

    def __init__(self, model: str, option: str, rule: str, value: Any) -> None:
        self.model, self.option, self.rule, self.value = model, option, rule, value
        super().__init__(f"{model}: option '{option}' must be {rule}; got {value!r}")


def _fail(model: str, option: str, rule: str, value: Any) -> ModelOptionError:
    return ModelOptionError(model, option, rule, value)


def check_bool(model: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(model, option, "a bool (true or false)", value)
    return value


def check_int(model: str, option: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(model, option, f"an integer >= {minimum}", value)
    return value


def check_float(
    model: str, option: str, value: Any, *, low: float, high: float, high_open: bool = False
) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and low <= value
        and (value < high if high_open else value <= high)
    )
    if not ok:
        bracket = ")" if high_open else "]"
        raise _fail(model, option, f"a number in [{low}, {high}{bracket}", value)
    return float(value)


def check_choice(model: str, option: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(model, option, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_widths(model: str, option: str, value: Any) -> tuple[int, ...]:
    """A list of positive layer widths (may be empty)."""
    rule = "a list of integers >= 1"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _fail(model, option, rule, value)
    for width in value:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise _fail(model, option, rule, value)
    return tuple(value)
