"""Typed options of a spec's ``schedule``, and the rules of its optimizer hyperparameters and
``init`` (checked at submission, field by field): the only copies of these rules, used by the
study spec, the trial config and :mod:`study.train.schedule`.

A schedule is a bare name (``schedule: cosine``) or a mapping with ``name`` and that kind's
options; unknown names and options are refused, every value is checked strictly (``true`` is
not a number, ``2.0`` is not an integer) and must be finite. Datasets have their options in
:mod:`study.data.registry`, models theirs in :mod:`models.options` (checked by
:mod:`study.spec.model_check`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from study.errors import HyperparameterError
from study.optim.hparams import check_hparams
from study.optim.registry import OPTIMIZERS, optimizer_hparams
from study.spec.base import StrictModel, kind_tag, named, one_of, problem
from study.suggest import did_you_mean

MAX_MILESTONES = 64
MAX_EPOCHS = 100_000


# ---- schedules -----------------------------------------------------------------------------


class ConstantSchedule(StrictModel):
    """``lr = base_lr`` throughout."""

    name: Literal["constant"] = "constant"


class CosineSchedule(StrictModel):
    """From ``base_lr`` down to 0 at the end, along half a cosine."""

    name: Literal["cosine"] = "cosine"


class MultistepSchedule(StrictModel):
    """``base_lr * gamma ** (milestones passed)``; milestones are also checked against epochs."""

    name: Literal["multistep"] = "multistep"
    milestones: (
        Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=MAX_MILESTONES)]
        | None
    ) = None
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1

    @model_validator(mode="after")
    def _increasing(self) -> MultistepSchedule:
        """Milestones increase strictly."""
        for i in range(1, len(self.milestones or ())):
            if self.milestones[i] <= self.milestones[i - 1]:
                rule = f"must be greater than the milestone before it ({self.milestones[i - 1]})"
                raise problem(f"milestones.{i}", rule, self.milestones[i])
        return self


SCHEDULE_KINDS = ("constant", "cosine", "multistep")

ScheduleSpec = Annotated[
    Annotated[ConstantSchedule, Tag("Constant")]
    | Annotated[CosineSchedule, Tag("Cosine")]
    | Annotated[MultistepSchedule, Tag("Multistep")],
    Discriminator(kind_tag),
]
schedule_before = named(SCHEDULE_KINDS, "schedule")


def check_schedule_epochs(schedule: Any, epochs: int) -> None:
    """Milestones must fall inside the run: each in ``[1, epochs)``."""
    for i, milestone in enumerate(getattr(schedule, "milestones", None) or ()):
        if milestone >= epochs:
            raise problem(
                f"schedule.milestones.{i}", f"must be < epochs ({epochs}) to ever apply", milestone
            )


# ---- optimizers and inits: rules shared by the spec and the trial config ----------------


def check_optimizer(value: str) -> str:
    """The optimizer is one of the optimizers below."""
    if value not in OPTIMIZERS:
        raise problem("", one_of(tuple(OPTIMIZERS), value), value)
    return value


def check_hyperparameters(optimizer: str, hparams: dict[str, Any], lr_rule: str) -> None:
    """Every key of ``hparams`` is one of ``optimizer``'s hyperparameters (not ``lr``:
    ``lr_rule`` says why) and its value keeps the hyperparameter's rule
    (:mod:`study.optim.hparams`)."""
    for key in ("lr", "params", "model"):
        if key in hparams:
            raise problem(key, lr_rule, hparams[key])
    defaults = optimizer_hparams(optimizer)
    for key, value in hparams.items():
        if key not in defaults:
            raise problem(
                key,
                f"is not a hyperparameter of {optimizer}{did_you_mean(key, defaults)}; "
                "valid: " + ", ".join(sorted(defaults)),
                value,
            )
    try:
        check_hparams({**defaults, **hparams}, owner=optimizer)
    except HyperparameterError as exc:
        raise problem(exc.name, exc.rule, exc.value) from None


def check_init(value: str) -> str:
    """An init is one of the initializations below."""
    from models import INIT_SCHEMES

    if value not in INIT_SCHEMES:
        raise problem("", one_of(tuple(INIT_SCHEMES), value), value)
    return value


#: An init scheme (``models.INIT_SCHEMES``).
InitScheme = Annotated[str, AfterValidator(check_init)]
#: A run's length and batch size (the spec's and every trial's).
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
BatchSize = Annotated[int, Field(ge=1, le=1 << 20)]
