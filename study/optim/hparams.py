"""Checks of optimizer hyperparameter values. Imports no torch, so a study spec can be
validated (and rejected) before anything is built or recorded.

Every hyperparameter of every registered optimizer has one rule here (:data:`RULES`), the
same rule torch itself applies where torch has one, and a stricter one where torch would
accept a value that cannot train (``alpha`` > 1, ``betas`` of the wrong length). ``eps`` is
the one name whose rule depends on the optimizer: INSGD divides by ``max(ln P, eps)``, so its
``eps`` must be > 0; torch's optimizers allow 0.

    >>> check_hparams({"betas": [0.9, 1.0]}, owner="adam")
    Traceback (most recent call last):
    study.errors.HyperparameterError: adam: betas must be two numbers in [0, 1), got [0.9, 1.0]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from study.errors import HyperparameterError

NORMS = ("l1", "l2")
VARIANTS = ("paper", "reference")
_STRICT_EPS = ("insgd", "INSGD")


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def _real(test: Callable[[float], bool], rule: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_real(v) and test(float(v))), rule


def _bool() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, bool)), "a bool"


def _betas(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(_is_real(b) and 0 <= b < 1 for b in value)
    )


#: name -> (test, rule): a value passes when ``test(value)``; else the error says
#: "``name`` must be ``rule``, got ``value``".
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": _real(lambda v: v >= 0, ">= 0"),
    "momentum": _real(lambda v: v >= 0, ">= 0"),
    "dampening": _real(lambda v: 0 <= v <= 1, "in [0, 1]"),
    "weight_decay": _real(lambda v: v >= 0, ">= 0"),
    "nesterov": _bool(),
    "power_momentum": _real(lambda v: 0 <= v < 1, "in [0, 1)"),
    "eps": _real(lambda v: v >= 0, ">= 0"),
    "norm": ((lambda v: v in NORMS), f"one of {list(NORMS)}"),
    "variant": ((lambda v: v in VARIANTS), f"one of {list(VARIANTS)}"),
    "betas": (_betas, "two numbers in [0, 1)"),
    "amsgrad": _bool(),
    "decoupled_weight_decay": _bool(),
    "lr_decay": _real(lambda v: v >= 0, ">= 0"),
    "initial_accumulator_value": _real(lambda v: v >= 0, ">= 0"),
    "alpha": _real(lambda v: 0 <= v <= 1, "in [0, 1]"),
    "centered": _bool(),
    "momentum_decay": _real(lambda v: v >= 0, ">= 0"),
}


def check_hparams(group: dict[str, Any], owner: str = "INSGD") -> None:
    """Validate the hyperparameters present in ``group`` (a defaults dict or a param group).

    Keys without a rule (``params``, torch's own bookkeeping) are not checked.

    Raises:
        HyperparameterError: (a ``ValueError``) ``"<owner>: <name> must be <rule>, got
            <value>"``, with ``name``, ``rule`` and ``value`` as attributes.
    """
    for name, value in group.items():
        if name not in RULES:
            continue
        test, rule = RULES[name]
        if name == "eps" and owner in _STRICT_EPS:
            test, rule = _real(lambda v: v > 0, "> 0")
        if not test(value):
            if rule.startswith((">", "in ")) and not _is_real(value):
                rule = "a real number" if not _finite_real_type(value) else "finite"
            raise HyperparameterError(owner, name, f"must be {rule}", value)
    if group.get("nesterov") is True and (
        group.get("momentum", 0) <= 0 or group.get("dampening", 0) != 0
    ):
        raise HyperparameterError(
            owner,
            "nesterov",
            "must be False unless momentum > 0 and dampening == 0 "
            f"(momentum={group.get('momentum', 0)!r}, dampening={group.get('dampening', 0)!r})",
            True,
        )


def _finite_real_type(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)
