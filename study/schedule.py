"""Learning-rate schedules as pure functions of training progress.

A schedule is validated once (:func:`create_schedule`) and then evaluated with
:func:`lr_at`, a pure function of ``(schedule, base_lr, epoch, total_epochs)`` where
``epoch`` is a float: the training loop calls it before every step with
``epoch = step / steps_per_epoch``, so schedules move per step (cosine decays smoothly;
multistep drops at the first step of a milestone epoch).

Registry (:data:`SCHEDULES`):

- ``constant``: ``lr = base_lr``.
- ``cosine``: ``lr = base_lr * (1 + cos(pi * epoch / total_epochs)) / 2``, from ``base_lr`` at the
  start to 0 at the end of the run. No options.
- ``multistep``: ``lr = base_lr * gamma ** (number of milestones <= epoch)``. Options
  ``milestones`` (strictly increasing epochs >= 1; default ``[round(0.5 T), round(0.75 T)]`` for
  ``T`` total epochs) and ``gamma`` (in ``(0, 1]``, default 0.1: a schedule only decays).

The spec (:mod:`study.spec_options`) checks the same rules at submission, and also that every
milestone falls inside the run (``< epochs``); everything the spec accepts is accepted here.

Example::

    >>> from study.schedule import create_schedule, lr_at
    >>> s = create_schedule({"name": "multistep", "milestones": [2, 4], "gamma": 0.5})
    >>> [lr_at(s, 1.0, e, 6) for e in (0, 1.9, 2, 4.5)]
    [1.0, 1.0, 0.5, 0.25]
    >>> lr_at("cosine", 0.1, 5, 10)
    0.05
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from study.errors import ConfigError

__all__ = ["SCHEDULES", "Schedule", "create_schedule", "lr_at"]

#: Each schedule's options and their defaults.
SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {},
    "cosine": {},
    "multistep": {"milestones": None, "gamma": 0.1},
}


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: ``name`` in :data:`SCHEDULES` and its complete options."""

    name: str
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.1


def create_schedule(spec: str | Mapping[str, Any] | Schedule) -> Schedule:
    """Validate ``spec``: a name (``"cosine"``) or ``{"name": ..., **options}``.

    Raises:
        ConfigError: unknown schedule (listing the valid ones), unknown option, or bad value;
            the message names ``schedule`` or ``schedule.<option>``.
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise ConfigError(
                f"schedule must name its kind with 'name' (one of {', '.join(SCHEDULES)}), "
                f"got {dict(spec)!r}"
            )
        name = spec["name"]
        options = {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ConfigError(f"schedule must be a name or a mapping with 'name', got {spec!r}")
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    valid = SCHEDULES[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(sorted(valid)) or "(none)"
        raise ConfigError(
            f"schedule {name!r} has no option {unknown[0]!r}; valid options: {listed}"
        )
    if name != "multistep":
        return Schedule(name=name)

    gamma = options.get("gamma", valid["gamma"])
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, int | float)
        or not math.isfinite(gamma)
        or not 0 < gamma <= 1
    ):
        raise ConfigError(f"schedule.gamma must be a finite number in (0, 1], got {gamma!r}")
    milestones = options.get("milestones")
    if milestones is not None:
        if (
            isinstance(milestones, str | bytes)
            or not hasattr(milestones, "__iter__")
            or not all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)
            or any(m < 1 for m in milestones)
            or any(b <= a for a, b in itertools.pairwise(list(milestones)))
        ):
            raise ConfigError(
                "schedule.milestones must be strictly increasing integer epochs >= 1, "
                f"got {milestones!r}"
            )
        milestones = tuple(int(m) for m in milestones)
    return Schedule(name=name, milestones=milestones, gamma=float(gamma))


def _default_milestones(total_epochs: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, round(0.5 * total_epochs)), max(1, round(0.75 * total_epochs))}))


def lr_at(
    schedule: str | Mapping[str, Any] | Schedule,
    base_lr: float,
    epoch: float,
    total_epochs: int,
) -> float:
    """The learning rate at fractional ``epoch`` (``step / steps_per_epoch``) of a run.

    Args:
        schedule: a :class:`Schedule` (from :func:`create_schedule`) or its spec.
        base_lr: the learning rate the schedule scales.
        epoch: progress in epochs, ``0 <= epoch <= total_epochs``.
        total_epochs: the run's length in epochs (>= 1).
    """
    s = create_schedule(schedule)
    if s.name == "constant":
        return base_lr
    if s.name == "cosine":
        frac = min(max(epoch / total_epochs, 0.0), 1.0)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    milestones = s.milestones if s.milestones is not None else _default_milestones(total_epochs)
    drops = sum(1 for m in milestones if epoch >= m)
    return base_lr * s.gamma**drops
