"""Typed options of a spec's ``schedule`` and ``dataset``, and the rules of its ``model``, optimizer
hyperparameters and ``init`` (checked at submission, field by field). These are the only copies of
these rules: :class:`study.spec.study_spec.StudySpec` and
:class:`study.spec.study_spec.TrialConfig` use them, and so do
:mod:`study.data.loader` and :mod:`study.train.schedule` when they are called directly.

Both accept a bare name (``schedule: cosine``, ``dataset: digits``) or a mapping with ``name``
and that kind's options; unknown names and unknown options are refused, every value is checked
strictly (``true`` is not a number, ``2.0`` is not an integer) and must be finite.

Schedules (what :mod:`study.train.schedule` computes; it accepts everything accepted here):

==========  =====================================================================================
constant    no options
cosine      no options
multistep   ``milestones``: strictly increasing integer epochs, each in ``[1, epochs)`` (at most
            64; default ``[round(epochs/2), round(3 epochs/4)]``); ``gamma``: the factor applied at
            each milestone, a finite number in ``(0, 1]`` (default 0.1): a schedule only decays
==========  =====================================================================================

Datasets (the options :mod:`study.data.loader` takes, with sanity bounds so that a spec cannot ask a
worker for an absurd allocation):

=============  ==================================================================================
digits         no options
synthetic      ``num_classes`` 2..1000 (10), ``shape`` [C, H, W] with C in 1..64, H and W in
               1..512 ([1, 8, 8]), ``n_train`` 1..1,000,000 (1000), ``n_val`` 1..1,000,000 (200),
               ``noise`` finite >= 0 (1.0), ``separation`` finite > 0 (1.0), ``seed`` 0..2**31-1
               (0), ``augment`` bool (false; needs H and W > 4)
cifar10/100    ``augment`` bool (true)
mnist,
fashion_mnist  no options
=============  ==================================================================================
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

MAX_MILESTONES = 64


def problem(field: str, rule: str, value: Any) -> PydanticCustomError:
    """A validation error whose field is ``field`` relative to the model that raises it."""
    return PydanticCustomError(
        "hprobust", "{field} {rule}", {"field": field, "rule": rule, "value": value}
    )


class StrictModel(BaseModel):
    """Unknown keys refused; strict types (no bool as number, no 2.0 as int); finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _named(kinds: tuple[str, ...], what: str) -> Any:
    """A before-validator: ``"name"`` -> ``{"name": "name"}``; the name must be known."""

    def convert(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value
        if isinstance(value, str):
            if value not in kinds:
                raise problem("", _one_of(kinds, value), value)
            value = {"name": value}
        if not isinstance(value, dict):
            raise problem("", f"must be a {what} name or a mapping with 'name'", value)
        name = value.get("name")
        if name is None:
            raise problem("name", f"is required (one of {', '.join(sorted(kinds))})", None)
        if not isinstance(name, str) or name not in kinds:
            raise problem("name", _one_of(kinds, name), name)
        return value

    return convert


def _one_of(kinds: tuple[str, ...], value: Any) -> str:
    from study.suggest import did_you_mean

    return "must be one of " + ", ".join(sorted(kinds)) + did_you_mean(value, kinds)


def _tag(value: Any) -> str | None:
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return str(name).title().replace("_", "") if isinstance(name, str) else None


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
    Discriminator(_tag),
]
schedule_before = _named(SCHEDULE_KINDS, "schedule")


def check_schedule_epochs(schedule: Any, epochs: int) -> None:
    """Milestones must fall inside the run: each in ``[1, epochs)``."""
    for i, milestone in enumerate(getattr(schedule, "milestones", None) or ()):
        if milestone >= epochs:
            raise problem(
                f"schedule.milestones.{i}", f"must be < epochs ({epochs}) to ever apply", milestone
            )


# ---- datasets ------------------------------------------------------------------------------


class DigitsData(StrictModel):
    name: Literal["digits"] = "digits"


class SyntheticData(StrictModel):
    name: Literal["synthetic"] = "synthetic"
    num_classes: Annotated[int, Field(ge=2, le=1000)] = 10
    shape: tuple[
        Annotated[int, Field(ge=1, le=64)],
        Annotated[int, Field(ge=1, le=512)],
        Annotated[int, Field(ge=1, le=512)],
    ] = (1, 8, 8)
    n_train: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    n_val: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    noise: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    separation: Annotated[float, Field(gt=0, le=1e6)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    augment: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shape_list(cls, value: Any) -> Any:
        # JSON and YAML give lists; a strict tuple field wants a tuple
        if isinstance(value, dict) and isinstance(value.get("shape"), list):
            value = {**value, "shape": tuple(value["shape"])}
        return value

    @model_validator(mode="after")
    def _augment_fits(self) -> SyntheticData:
        """augment needs height and width > 4 (4-pixel reflect padding)."""
        if self.augment and min(self.shape[1:]) <= 4:
            rule = "needs height and width > 4 (4-pixel reflect padding)"
            raise problem("augment", rule + f", got shape {list(self.shape)}", self.augment)
        return self


class Cifar10Data(StrictModel):
    name: Literal["cifar10"] = "cifar10"
    augment: bool = True


class Cifar100Data(StrictModel):
    name: Literal["cifar100"] = "cifar100"
    augment: bool = True


class MnistData(StrictModel):
    name: Literal["mnist"] = "mnist"


class FashionMnistData(StrictModel):
    name: Literal["fashion_mnist"] = "fashion_mnist"


DATASET_KINDS = ("digits", "synthetic", "cifar10", "cifar100", "mnist", "fashion_mnist")

DatasetSpec = Annotated[
    Annotated[DigitsData, Tag("Digits")]
    | Annotated[SyntheticData, Tag("Synthetic")]
    | Annotated[Cifar10Data, Tag("Cifar10")]
    | Annotated[Cifar100Data, Tag("Cifar100")]
    | Annotated[MnistData, Tag("Mnist")]
    | Annotated[FashionMnistData, Tag("FashionMnist")],
    Discriminator(_tag),
]
dataset_before = _named(DATASET_KINDS, "dataset")


# ---- models, optimizers, inits: rules shared by the spec and the trial config ----------------


def lazy_attr(module: str, name: str) -> Any:
    """``module.name``, imported on first use (keeps ``import study.spec.study_spec`` light)."""
    import importlib

    return getattr(importlib.import_module(module), name)


def check_model(value: dict[str, Any]) -> dict[str, Any]:
    """``{name, **options}``: name is one of the models and every other key one of its options
    (the option values are checked by building the model: :func:`check_model_builds`)."""
    from study.suggest import did_you_mean

    name = value.get("name")
    if not isinstance(name, str):
        raise problem("name", "is required (a model name)", name)
    known = lazy_attr("models", "MODELS")
    if name not in known:
        raise problem("name", _one_of(tuple(known), name), name)
    valid = set(lazy_attr("models", "model_options")(name))
    for key, option in value.items():
        if key != "name" and key not in valid:
            rule = (
                f"is not an option of model {name}{did_you_mean(key, valid)}; valid: "
                + ", ".join(sorted(valid))
            )
            raise problem(key, rule, option)
    return value


def check_model_builds(model: dict[str, Any], dataset: Any) -> None:
    """Build ``model`` on the meta device (no memory, ~ms) for ``dataset``'s inputs: every
    option value is checked by the model's own rules (:mod:`models.options`)."""
    import torch

    from models import ModelOptionError, create_model

    info = lazy_attr("study.data.loader", "dataset_info")(dataset)
    options = {k: v for k, v in model.items() if k != "name"}
    try:
        with torch.device("meta"):
            create_model(
                model["name"],
                in_shape=tuple(info.in_shape),
                num_classes=info.num_classes,
                **options,
            )
    except ModelOptionError as exc:
        raise problem(f"model.{exc.option}", f"must be {exc.rule}", exc.value) from None
    except ValueError as exc:
        rule = f"must build for {dataset.name} inputs of shape {tuple(info.in_shape)} ({exc})"
        raise problem("model.name", rule, model["name"]) from None


def check_optimizer(value: str) -> str:
    """The optimizer is one of the optimizers below."""
    optimizers = lazy_attr("study.optim.registry", "OPTIMIZERS")
    if value not in optimizers:
        raise problem("", _one_of(tuple(optimizers), value), value)
    return value


def check_hyperparameters(optimizer: str, hparams: dict[str, Any], lr_rule: str) -> None:
    """Every key of ``hparams`` is one of ``optimizer``'s hyperparameters (not ``lr``:
    ``lr_rule`` says why) and its value keeps the hyperparameter's rule
    (:mod:`study.optim.hparams`)."""
    from study.errors import HyperparameterError
    from study.optim.hparams import check_hparams
    from study.suggest import did_you_mean

    for key in ("lr", "params", "model"):
        if key in hparams:
            raise problem(key, lr_rule, hparams[key])
    defaults = lazy_attr("study.optim.registry", "optimizer_hparams")(optimizer)
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
    schemes = lazy_attr("models", "INIT_SCHEMES")
    if value not in schemes:
        raise problem("", _one_of(tuple(schemes), value), value)
    return value
