"""One trial's configuration, complete and checked: :class:`TrialConfig` (what
:func:`study.train.trial.train_trial` and :func:`study.train.pack.train_pack` take)."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from study.data.registry import (
    DatasetFields,
    DatasetInfo,
    DatasetSpec,
    dataset_before,
    dataset_info,
)
from study.errors import SpecError
from study.spec.base import StrictModel
from study.spec.base import problem as _problem
from study.spec.model_check import check_model, check_model_builds
from study.spec.options import (
    BatchSize,
    CosineSchedule,
    Epochs,
    InitScheme,
    ScheduleSpec,
    check_hyperparameters,
    check_optimizer,
    check_schedule_epochs,
    schedule_before,
)
from study.spec.problems import spec_problems

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class OptimizerSpec(BaseModel):
    """A trial's optimizer: ``{optimizer, ...hyperparameters}`` (an arm without its name; the
    learning rate is the trial's ``lr``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    optimizer: str

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        """The optimizer is one of the optimizers below."""
        return check_optimizer(value)

    @model_validator(mode="after")
    def _known_hparams(self) -> OptimizerSpec:
        """Every other key is one of the optimizer's hyperparameters, and its value keeps the
        hyperparameter's rule."""
        rule = "is not allowed here: give the learning rate as the trial's lr"
        check_hyperparameters(self.optimizer, self.hparams, rule)
        return self

    @property
    def hparams(self) -> dict[str, Any]:
        """The hyperparameters (every key but ``optimizer``)."""
        return dict(self.model_extra or {})


class TrialConfig(DatasetFields, StrictModel):
    """One trial, complete and checked: what :func:`study.train.trial.train_trial` and
    :func:`study.train.pack.train_pack` take, frozen.

    A study makes them with :meth:`StudySpec.trial_config`; anyone else with
    :meth:`from_mapping`, which applies the spec's own rules (the same typed dataset, schedule,
    model, optimizer and init rules) and names field, rule and value of every problem.
    """

    dataset: DatasetSpec
    model: dict[str, Any]
    optimizer: OptimizerSpec
    lr: Annotated[float, Field(gt=0)]
    init: InitScheme
    epochs: Epochs
    batch_size: BatchSize
    init_scale: Annotated[float, Field(gt=0)] = 1.0
    seed: Annotated[int, Field(ge=0)] = 0
    schedule: ScheduleSpec = Field(default_factory=CosineSchedule)
    precision: Literal["fp32", "bf16", "fp64"] = "fp32"
    device: str = "auto"
    data_dir: str | None = None
    num_threads: Annotated[int, Field(ge=1, le=4096)] | None = None

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return dataset_before(value)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: Any) -> Any:
        return schedule_before(value)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        """model.name is one of the models and every other key one of its options."""
        return check_model(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        """device is auto, cpu, cuda or cuda:<index>."""
        if not _DEVICE_RE.fullmatch(value):
            raise _problem("", "must be one of auto, cpu, cuda (or cuda:<index>)", value)
        return value

    @model_validator(mode="after")
    def _model_builds(self) -> TrialConfig:
        """The model builds for the dataset's inputs (on the meta device)."""
        check_model_builds(self.model, self.dataset)
        return self

    @model_validator(mode="after")
    def _schedule_fits_epochs(self) -> TrialConfig:
        """Every milestone of a multistep schedule is < epochs."""
        check_schedule_epochs(self.schedule, self.epochs)
        return self

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> TrialConfig:
        """Validate ``config`` (the keys of :class:`TrialConfig`; ``dataset`` and ``schedule``
        may be bare names) with the spec's rules.

        Raises:
            SpecError: (a ``ConfigError``) every problem as ``{field, rule, value}``.
        """
        if isinstance(config, TrialConfig):
            return config
        if not isinstance(config, Mapping):
            problem = {"field": "config", "rule": "must be a mapping of keys", "value": config}
            raise SpecError([problem])
        try:
            return cls.model_validate(dict(config))
        except ValidationError as exc:
            raise SpecError(spec_problems(exc, root=cls)) from None

    # ---- what the trial loop reads ------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}

    @property
    def optimizer_name(self) -> str:
        return self.optimizer.optimizer

    @property
    def optimizer_hparams(self) -> dict[str, Any]:
        return self.optimizer.hparams

    @functools.cached_property
    def _info(self) -> DatasetInfo:
        return dataset_info(self.dataset)

    @property
    def num_classes(self) -> int:
        return int(self._info.num_classes)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self._info.in_shape)
