"""Checks of SGD/INSGD hyperparameter values. Imports no torch, so a study spec can be
validated (and rejected) before anything is built or recorded."""

from __future__ import annotations

import math
import numbers
from typing import Any

from study.errors import HyperparameterError

NORMS = ("l1", "l2")
VARIANTS = ("paper", "reference")


def check_hparams(group: dict[str, Any], owner: str = "INSGD") -> None:
    """Validate the hyperparameters present in ``group`` (a defaults dict or a param group).

    Raises:
        HyperparameterError: (a ``ValueError``) ``"<owner>: <name> must be <rule>, got
            <value>"``, with ``name``, ``rule`` and ``value`` as attributes.
    """

    def _fail(name: str, rule: str, value: Any) -> HyperparameterError:
        return HyperparameterError(owner, name, f"must be {rule}", value)

    def _real(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _fail(name, "a real number", value)
        if not math.isfinite(value):
            raise _fail(name, "finite", value)
        return float(value)

    if "lr" in group and _real("lr", group["lr"]) < 0:
        raise _fail("lr", ">= 0", group["lr"])
    if "momentum" in group and _real("momentum", group["momentum"]) < 0:
        raise _fail("momentum", ">= 0", group["momentum"])
    if "dampening" in group and not 0 <= _real("dampening", group["dampening"]) <= 1:
        raise _fail("dampening", "in [0, 1]", group["dampening"])
    if "weight_decay" in group and _real("weight_decay", group["weight_decay"]) < 0:
        raise _fail("weight_decay", ">= 0", group["weight_decay"])
    if "power_momentum" in group and not 0 <= _real("power_momentum", group["power_momentum"]) < 1:
        raise _fail("power_momentum", "in [0, 1)", group["power_momentum"])
    if "eps" in group and _real("eps", group["eps"]) <= 0:
        raise _fail("eps", "> 0", group["eps"])
    if "nesterov" in group:
        if not isinstance(group["nesterov"], bool):
            raise _fail("nesterov", "a bool", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise HyperparameterError(
                owner,
                "nesterov",
                "must be False unless momentum > 0 and dampening == 0 "
                f"(momentum={group['momentum']!r}, dampening={group['dampening']!r})",
                True,
            )
    if "norm" in group and group["norm"] not in NORMS:
        raise _fail("norm", f"one of {list(NORMS)}", group["norm"])
    if "variant" in group and group["variant"] not in VARIANTS:
        raise _fail("variant", f"one of {list(VARIANTS)}", group["variant"])
