"""Learning-rate schedules as pure functions of training progress.

A schedule is checked once (by the spec, or :func:`parse_schedule`) and then evaluated with
:func:`lr_at`, a pure function of ``(schedule, base_lr, epoch, total_epochs)`` where
``epoch`` is a float: the training loop calls it before every step with
``epoch = step / steps_per_epoch``, so schedules move per step (cosine decays smoothly;
multistep drops at the first step of a milestone epoch).

Schedules (:data:`SCHEDULE_KINDS`):

- ``constant``: ``lr = base_lr``.
- ``cosine``: ``lr = base_lr * (1 + cos(pi * epoch / total_epochs)) / 2``, from ``base_lr`` at the
  start to 0 at the end of the run. No options.
- ``multistep``: ``lr = base_lr * gamma ** (number of milestones <= epoch)``. Options
  ``milestones`` (strictly increasing epochs >= 1; default ``[round(0.5 T), round(0.75 T)]`` for
  ``T`` total epochs) and ``gamma`` (in ``(0, 1]``, default 0.1: a schedule only decays).

The schedules are the spec's typed ones (:mod:`study.spec.options`: ``ConstantSchedule``,
``CosineSchedule``, ``MultistepSchedule``), checked there once; :func:`parse_schedule` applies
the same rules to a name or mapping given directly.

Example::

    >>> from study.train.schedule import lr_at, parse_schedule
    >>> s = parse_schedule({"name": "multistep", "milestones": [2, 4], "gamma": 0.5})
    >>> [lr_at(s, 1.0, e, 6) for e in (0, 1.9, 2, 4.5)]
    [1.0, 1.0, 0.5, 0.25]
    >>> lr_at("cosine", 0.1, 5, 10)
    0.05
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import field_validator

from study.spec.base import StrictModel
from study.spec.options import (
    SCHEDULE_KINDS,
    ConstantSchedule,
    CosineSchedule,
    MultistepSchedule,
    ScheduleSpec,
    schedule_before,
)

__all__ = ["SCHEDULE_KINDS", "Schedule", "lr_at", "parse_schedule"]

#: A checked schedule.
Schedule = ConstantSchedule | CosineSchedule | MultistepSchedule
_SCHEDULES = (ConstantSchedule, CosineSchedule, MultistepSchedule)


class _OneSchedule(StrictModel):
    schedule: ScheduleSpec

    @field_validator("schedule", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return schedule_before(value)


def parse_schedule(value: str | Mapping[str, Any] | Schedule) -> Schedule:
    """A schedule from its name (``"cosine"``) or ``{"name": ..., **options}``, by the spec's
    rules (a checked schedule is returned as it is).

    Raises:
        SpecError: (a ``ConfigError``) unknown schedule or option, or a bad value, as
            ``schedule.<option> <rule>, got <value>``.
    """
    if isinstance(value, _SCHEDULES):
        return value
    from pydantic import ValidationError

    from study.errors import SpecError
    from study.spec.problems import spec_problems

    try:
        return _OneSchedule.model_validate({"schedule": value}).schedule
    except ValidationError as exc:
        raise SpecError(spec_problems(exc, root=_OneSchedule)) from None


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
        schedule: a checked schedule (a trial config's ``schedule``) or its name or mapping
            (checked here by :func:`parse_schedule`).
        base_lr: the learning rate the schedule scales.
        epoch: progress in epochs, ``0 <= epoch <= total_epochs``.
        total_epochs: the run's length in epochs (>= 1).
    """
    s = schedule if isinstance(schedule, _SCHEDULES) else parse_schedule(schedule)
    if s.name == "constant":
        return base_lr
    if s.name == "cosine":
        frac = min(max(epoch / total_epochs, 0.0), 1.0)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    milestones = s.milestones if s.milestones is not None else _default_milestones(total_epochs)
    drops = sum(1 for m in milestones if epoch >= m)
    return base_lr * s.gamma**drops
