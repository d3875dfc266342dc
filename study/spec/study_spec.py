"""The study spec: the YAML file ``hprobust run`` reads and the body ``POST /studies`` accepts.

A spec names the dataset, the model, the optimizer arms, the search space (``lr`` on a log
scale, ``init`` schemes, optional ``init_scale``), the Optuna sampler, the budget
(``trials_per_arm`` points per arm x ``seeds`` replicates), the training settings and the
resources. Unknown keys are rejected and every error names the field, the rule and the value::

    >>> parse_spec({"name": "x", "dataset": "digits", "model": {"name": "mlp"},
    ...             "arms": [{"name": "sgd", "optimizer": "sgd"}],
    ...             "search": {"lr": {"low": -1, "high": 1}, "init": ["xavier_normal"]}})
    Traceback (most recent call last):
    study.errors.SpecError: search.lr.low must be > 0, got -1

The default design is a grid (``sampler: grid``): learning rates log-spaced from
``search.lr.low`` to ``high`` at ``search.lr.points_per_decade`` (default 4; both ends included)
or exactly ``search.lr.points`` of them, crossed with every ``init`` (and with the
``search.init_scale`` grid, if searched). Each arm runs the whole grid unless
``trials_per_arm`` asks for fewer points, with the same points and seeds for every arm.

Pairing: ``grid``, ``qmc`` and ``random`` give every arm the same points and seeds (one
Optuna sampler per arm, all with the same seed). ``tpe`` is adaptive, so its arms are not
paired and arm-vs-baseline comparisons match fewer rows.

A study's size is judged from the spec alone, in closed form (nothing is built, listed or
loaded; ``study.spec.bounds``): the design's points per arm (the grid's crossing, however few
of them ``trials_per_arm`` runs), the model's parameters and activation memory per sample
(estimated from its options: ``models.size``) and the dataset in memory. The spec itself
refuses a model beyond 5,000 modules or 10^11 parameters (checking a spec builds its model on
the meta device); the service and ``hprobust run`` refuse a study beyond their limits,
``HPROBUST_MAX_DESIGN_POINTS`` (default 1,000,000), ``HPROBUST_MAX_MODEL_PARAMS``
(200,000,000), ``HPROBUST_MAX_ACTIVATION_MB`` (256 MB per sample) and
``HPROBUST_MAX_DATASET_MB`` (4,096 MB), each refusal naming the key, the size and the limit.

A spec can be valid and still too small for the summary's claims (one lr per init, fewer
than 5 seeds, an lr range too narrow to hold the arms' good regions, tpe with comparisons, ...):
:meth:`StudySpec.design_warnings` says so; the API returns these warnings with the 202 and
``hprobust run`` prints them.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from study.data.registry import DatasetFields, DatasetSpec, dataset_before, dataset_info
from study.errors import SpecError
from study.spec.base import StrictModel
from study.spec.base import problem as _problem
from study.spec.model_check import check_model, check_model_builds, pack_refusal
from study.spec.options import (
    SCHEDULE_KINDS,
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
from study.spec.samplers import SAMPLERS
from study.spec.trial_config import OptimizerSpec, TrialConfig
from study.text import shown, unsafe_rule

SCHEDULES = SCHEDULE_KINDS
PRECISIONS = ("fp32", "bf16")
#: An arm name, matched whole (``fullmatch``: ``$`` would also match before a trailing newline).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
# Sanity bounds only: the service enforces its own (smaller) limits as settings.
MAX_TRIALS_PER_ARM = 100_000
MAX_SEEDS = 1_000
MAX_PACK_SIZE = 1024
#: ``resources.pack_size: auto`` on GPUs packs about this many trials (a whole number of
#: "all arms x seeds of one point"). Not yet measured on a GPU: bench/gpu_throughput.py says.
AUTO_PACK_TARGET = 16
DEFAULT_TRIALS_PER_ARM = 16  # samplers other than grid
#: The least ``resources.cpus_per_trial`` (issue 21, probe Q2: 0.01 started 5+ trial
#: processes of 0.75 GB each on 2 CPUs).
MIN_CPUS_PER_TRIAL = 0.25


DEFAULT_POINTS_PER_DECADE = 4


class LogRange(StrictModel):
    """A log-scale range ``[low, high]``. On a grid: ``points`` values, or
    ``points_per_decade`` (default 4) values per decade, log-spaced with both ends included
    (not both keys)."""

    low: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    high: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    points: Annotated[int, Field(ge=1, le=10_000)] | None = None
    points_per_decade: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LogRange:
        """high must be >= low."""
        if self.high < self.low:
            raise _problem("high", f"must be >= low ({self.low:g})", self.high)
        if self.points is not None and self.points_per_decade is not None:
            raise _problem(
                "points_per_decade",
                f"must not be given together with points ({self.points}); give one of them",
                self.points_per_decade,
            )
        return self

    @property
    def n_points(self) -> int:
        """Values on the grid: ``points``, or ``1 + round(points_per_decade x decades)`` (at
        least 2 when high > low, so both ends are in; 1 when low == high)."""
        if self.points is not None:
            return self.points
        if self.high == self.low:
            return 1
        density = self.points_per_decade or DEFAULT_POINTS_PER_DECADE
        decades = math.log10(self.high) - math.log10(self.low)
        return 1 + max(1, math.floor(density * decades + 0.5))

    def value(self, i: int) -> float:
        """The ``i``-th of the :attr:`n_points` grid values (0-based), in closed form: evenly
        spaced in log10 from low to high, both ends exact. Nothing else is computed, so a
        point of a grid of any size costs the same."""
        n = self.n_points
        if not 0 <= i < n:
            raise IndexError(f"grid index {i} out of range (the grid has {n} values)")
        if i == 0:
            return self.low
        if i == n - 1:
            return self.high
        lo, hi = math.log10(self.low), math.log10(self.high)
        return float(10 ** (lo + (hi - lo) * i / (n - 1)))

    def grid(self) -> list[float]:
        """All :attr:`n_points` values (:meth:`value` of each), for a grid small enough to
        list; a study's search never lists them (:meth:`StudySpec.grid_point`)."""
        return [self.value(i) for i in range(self.n_points)]


class SearchSpec(StrictModel):
    lr: LogRange
    init: Annotated[list[InitScheme], Field(min_length=1, max_length=64)]
    init_scale: LogRange | None = None

    @field_validator("init")
    @classmethod
    def _known_inits(cls, value: list[str]) -> list[str]:
        """Each init is one of the initializations below, and none repeats."""
        for i, scheme in enumerate(value):
            if scheme in value[:i]:
                raise _problem(str(i), "must not repeat an earlier init", scheme)
        return value


class ArmSpec(BaseModel):
    """One optimizer arm: ``{name, optimizer, ...hyperparameters}`` (``lr`` is searched)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    optimizer: str

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        """An arm name is 1-64 letters, digits, `_`, `.` or `-`, starting with a letter or digit
        (the whole name: a trailing newline is not allowed either)."""
        if not NAME_RE.fullmatch(value):
            raise _problem("", NAME_RULE, shown(value))
        return value

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        """The optimizer is one of the optimizers below."""
        return check_optimizer(value)

    @model_validator(mode="after")
    def _known_hparams(self) -> ArmSpec:
        """Every other key is one of the optimizer's hyperparameters (not `lr`, which is
        searched), and its value keeps the hyperparameter's rule."""
        check_hyperparameters(
            self.optimizer, self.hparams, "is not allowed in an arm (lr is searched)"
        )
        return self

    @property
    def hparams(self) -> dict[str, Any]:
        """The optimizer hyperparameters (every key but ``name`` and ``optimizer``)."""
        return dict(self.model_extra or {})


class AshaSpec(StrictModel):
    """Ray Tune's ASHA scheduler on ``val_acc`` (max); ``max_t`` defaults to ``epochs``."""

    name: Literal["asha"] = "asha"
    grace_period: Annotated[int, Field(ge=1)] = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 3.0
    brackets: Annotated[int, Field(ge=1, le=10)] = 1
    max_t: Annotated[int, Field(ge=1)] | None = None


class ResourcesSpec(StrictModel):
    """Resources per Ray Tune trial (a pack of trials counts as one: docs/design.md#packing).
    ``pack_size``: ``auto`` packs when trials run on GPUs (``gpus_per_trial`` > 0; see
    :attr:`StudySpec.pack_size`), never on CPU; an integer forces that many trials per pack (1:
    never pack)."""

    cpus_per_trial: Annotated[float, Field(gt=0, le=1024)] = 1.0
    gpus_per_trial: Annotated[float, Field(ge=0, le=64)] = 0.0
    max_concurrent_trials: Annotated[int, Field(ge=1, le=10_000)] = 2
    pack_size: Literal["auto"] | Annotated[int, Field(ge=1, le=MAX_PACK_SIZE)] = "auto"

    @field_validator("cpus_per_trial")
    @classmethod
    def _cpu_floor(cls, value: float) -> float:
        """cpus_per_trial is at least 0.25: each trial is a process of its own (Python, torch,
        a Ray worker: about 0.75 GB), and a smaller share of a CPU cannot keep one fed. How
        many trials run at once is also bounded by what the Ray cluster has: a trial on CPUs
        only counts as at least 1 CPU, and its memory is estimated from the spec
        (``study.tune.cluster.concurrency_cap``; a warning says so)."""
        if value < MIN_CPUS_PER_TRIAL:
            rule = (
                f"must be >= {MIN_CPUS_PER_TRIAL} (each trial is a process of its own, about "
                "0.75 GB; a smaller share of a CPU cannot keep one fed)"
            )
            raise _problem("", rule, value)
        return value

    @field_validator("gpus_per_trial")
    @classmethod
    def _gpu_fraction(cls, value: float) -> float:
        """gpus_per_trial is a fraction <= 1 or a whole number."""
        if value > 1 and value != int(value):
            raise _problem("", "must be a fraction <= 1 or a whole number", value)
        return value


class AnalysisSpec(StrictModel):
    """Settings of the robustness summary: the tolerance ``τ`` of the good threshold
    ``g = A* - τ`` (docs/summary.md)."""

    tolerance: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.02


class StudySpec(DatasetFields, StrictModel):
    """A robustness study. See the module docstring; ``examples/*.yaml`` are complete specs."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    dataset: DatasetSpec
    model: dict[str, Any]
    arms: Annotated[list[ArmSpec], Field(min_length=1, max_length=32)]
    search: SearchSpec
    sampler: Literal[tuple(SAMPLERS)] = "grid"  # type: ignore[valid-type]
    trials_per_arm: Annotated[int, Field(ge=1, le=MAX_TRIALS_PER_ARM)] | None = None
    seeds: Annotated[int, Field(ge=1, le=MAX_SEEDS)] = 3
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    epochs: Epochs = 10
    batch_size: BatchSize = 128
    schedule: ScheduleSpec = Field(default_factory=CosineSchedule)
    precision: Literal["fp32", "bf16"] = "fp32"
    early_stopping: Literal["none"] | AshaSpec = "none"
    resources: ResourcesSpec = ResourcesSpec()
    analysis: AnalysisSpec = AnalysisSpec()

    @model_validator(mode="before")
    @classmethod
    def _safe_text(cls, value: Any) -> Any:
        """No string of the spec (a key or a value, at any depth) holds a control, bidi,
        zero-width or line-separator character (C0, DEL, C1; Unicode categories Cc, Cf, Zl,
        Zp, Cs): such text shows differently from what it is."""
        problem = unsafe_text(value)
        if problem is not None:
            raise _problem(*problem)
        return value

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _asha_shorthand(cls, value: Any) -> Any:
        return {"name": "asha"} if value == "asha" else value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        """The study name is free text, not blank (written into MLflow's description as a code
        span, so Markdown in it shows as typed)."""
        rule = unsafe_rule(value)
        if rule is not None:
            raise _problem("", rule, shown(value))
        if not value.strip():
            raise _problem("", "must not be blank", value)
        return value

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return dataset_before(value)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: Any) -> Any:
        return schedule_before(value)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        """model.name is one of the models below and every other key one of its options."""
        return check_model(value)

    @field_validator("arms")
    @classmethod
    def _unique_arms(cls, value: list[ArmSpec]) -> list[ArmSpec]:
        """Arm names are unique."""
        seen: set[str] = set()
        for i, arm in enumerate(value):
            if arm.name in seen:
                raise _problem(f"{i}.name", "must be unique among arms", arm.name)
            seen.add(arm.name)
        return value

    @model_validator(mode="after")
    def _model_builds(self) -> StudySpec:
        """Build the model on the meta device (no memory, ~ms): every option value is checked
        against this dataset's input shape before anything is recorded."""
        check_model_builds(self.model, self.dataset)
        return self

    @model_validator(mode="after")
    def _asha_within_epochs(self) -> StudySpec:
        """early_stopping.max_t is <= epochs."""
        if isinstance(self.early_stopping, AshaSpec):
            max_t = self.early_stopping.max_t
            if max_t is not None and max_t > self.epochs:
                raise _problem("early_stopping.max_t", f"must be <= epochs ({self.epochs})", max_t)
        return self

    @model_validator(mode="after")
    def _schedule_fits_epochs(self) -> StudySpec:
        """Every milestone of a multistep schedule is < epochs."""
        check_schedule_epochs(self.schedule, self.epochs)
        return self

    @model_validator(mode="after")
    def _packing_possible(self) -> StudySpec:
        size = self.resources.pack_size
        if size == "auto" or size == 1:
            return self
        if isinstance(self.early_stopping, AshaSpec):
            rule = (
                "must be 1 or auto when early_stopping is asha (ASHA stops trials one at a "
                "time; a pack trains its members together)"
            )
            raise _problem("resources.pack_size", rule, size)
        reason = self._pack_refusal
        if reason is not None:
            raise _problem("resources.pack_size", f"must be 1 or auto ({reason})", size)
        return self

    @functools.cached_property
    def _pack_refusal(self) -> str | None:
        """Why this study's model cannot be packed (``study.spec.model_check.pack_refusal``),
        or None."""
        info = dataset_info(self.dataset)
        options = {k: v for k, v in self.model.items() if k != "name"}
        return pack_refusal(self.model["name"], options, tuple(info.in_shape), info.num_classes)

    # ---- derived values -------------------------------------------------------------------

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    def arm(self, name: str) -> ArmSpec:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm named {name!r}; arms: {', '.join(self.arm_names)}")

    @property
    def grid_size(self) -> int | None:
        """Points in the grid (``sampler: grid``): lrs x inits (x init_scales), else None."""
        if not SAMPLERS[self.sampler].grid:
            return None
        return math.prod(self.grid_axes().values())

    def grid_axes(self) -> dict[str, int]:
        """How many values each axis of the grid has, in the order of the crossing:
        ``{"lr": n, "init": n[, "init_scale": n]}`` (closed form, nothing listed)."""
        axes = {"lr": self.search.lr.n_points, "init": len(self.search.init)}
        if self.search.init_scale is not None:
            axes["init_scale"] = self.search.init_scale.n_points
        return axes

    def grid_point(self, index: int) -> dict[str, Any]:
        """The point ``index`` (0-based) of the grid's crossing lr x init (x init_scale), read
        as a mixed-radix number (init_scale varies fastest, then init, then lr): ``{"lr",
        "init", "init_scale"}``. Closed form: the crossing is never listed."""
        axes = self.grid_axes()
        total = math.prod(axes.values())
        if not 0 <= index < total:
            raise IndexError(f"grid point {index} out of range (the grid has {total} points)")
        scale = self.search.init_scale
        index, k_scale = divmod(index, axes.get("init_scale", 1))
        k_lr, k_init = divmod(index, axes["init"])
        return {
            "lr": self.search.lr.value(k_lr),
            "init": self.search.init[k_init],
            "init_scale": 1.0 if scale is None else scale.value(k_scale),
        }

    @property
    def points_per_arm(self) -> int:
        """Search points each arm runs: the whole grid unless ``trials_per_arm`` asks for
        fewer; ``trials_per_arm`` (default 16) for the other samplers."""
        grid = self.grid_size
        if grid is None:
            return self.trials_per_arm or DEFAULT_TRIALS_PER_ARM
        return grid if self.trials_per_arm is None else min(self.trials_per_arm, grid)

    @property
    def total_trials(self) -> int:
        """arms x points per arm x seeds."""
        return len(self.arms) * self.points_per_arm * self.seeds

    @property
    def pack_size(self) -> int:
        """Trials per pack (per Ray Tune trial), ``resources.pack_size`` resolved: ``auto`` is
        1 on CPU (``gpus_per_trial`` 0), with ASHA or for a model that cannot be packed, and
        otherwise the whole multiple of ``arms x seeds`` (every arm and seed of a point) nearest
        :data:`AUTO_PACK_TARGET` from below (at least one point). Never more than the study's
        trials."""
        size = self.resources.pack_size
        if size == "auto":
            if (
                self.resources.gpus_per_trial == 0
                or isinstance(self.early_stopping, AshaSpec)
                or self._pack_refusal is not None
            ):
                return 1
            unit = len(self.arms) * self.seeds
            size = max(unit, AUTO_PACK_TARGET // unit * unit)
        return max(1, min(int(size), self.total_trials))

    @property
    def paired(self) -> bool:
        """Whether every arm gets the same points and seeds (non-adaptive samplers)."""
        return SAMPLERS[self.sampler].paired

    def design_warnings(self) -> list[str]:
        """Plain sentences naming what this design cannot support in the summary (it is
        accepted anyway): too few lrs per init, points or seeds for a verdict (or seeds for tight
        intervals), an lr range that will likely cut a good region, unpaired arms,
        lrs confounded with inits, a grid cut short, trials that early stopping removes."""
        out: list[str] = []
        n_inits = len(self.search.init)
        compares = len(self.arms) >= 2
        if SAMPLERS[self.sampler].grid:
            n_lrs = self.search.lr.n_points
            if n_lrs < 2:
                out.append(
                    "search.lr gives 1 learning rate: every lr window is 0 and every AUC flat; "
                    "widen search.lr or raise its points_per_decade"
                )
            grid = self.grid_size or 0
            if self.trials_per_arm is not None and self.trials_per_arm < grid:
                out.append(
                    f"trials_per_arm {self.trials_per_arm} is less than the grid's {grid} "
                    "points: every arm runs the same subset, so some lr x init cells are "
                    "missing; leave trials_per_arm out to run the whole grid"
                )
        else:
            per_init = self.points_per_arm / n_inits
            if per_init < 2:
                out.append(
                    f"{self.points_per_arm} points per arm over {n_inits} inits: fewer than 2 "
                    "lrs per init, so lr windows are 0 and AUCs flat; raise trials_per_arm"
                )
            if n_inits > 1:
                out.append(
                    f"sampler {self.sampler} draws lr and init together: each init gets its own "
                    "lrs, so per-init curves compare different lrs; the default grid crosses "
                    "every lr with every init"
                )
        if compares and not self.paired:
            out.append(
                f"sampler {self.sampler} is adaptive: the arms get different points, so "
                "comparisons are unpaired and use only the points both arms happen to share"
            )
        if compares and self.points_per_arm < 6:
            out.append(
                f"{self.points_per_arm} points per arm (fewer than 6): every verdict will be "
                "not_enough_data"
            )
        if compares:  # the summary's needs (docs/summary.md): seeds, an lr range that holds
            from study.analysis.design import range_warning, seeds_warning

            lr = self.search.lr
            out += [w for w in (seeds_warning(self.seeds), range_warning(lr.low, lr.high)) if w]
        if isinstance(self.early_stopping, AshaSpec):
            out.append(
                "early_stopping asha: trials stopped early are left out of the summary, so "
                "poor lrs lose cells and the curves look better than they are"
            )
        return out

    @property
    def num_classes(self) -> int:
        """Classes of the dataset (from ``study.data.registry.dataset_info``; loads nothing)."""
        return int(dataset_info(self.dataset).num_classes)

    def trial_config(
        self,
        arm: str,
        *,
        lr: float,
        init: str,
        init_scale: float = 1.0,
        seed: int,
        data_dir: str | None = None,
        device: str = "auto",
        num_threads: int | None = None,
    ) -> TrialConfig:
        """The :class:`TrialConfig` of one trial of this study (what
        ``study.train.trial.train_trial``
        takes). Not validated again: the spec has checked everything it takes from the spec,
        and the point (``lr``, ``init``, ``init_scale``, ``seed``) comes from the spec's search
        space (:mod:`study.tune.searcher`)."""
        arm_spec = self.arm(arm)
        return TrialConfig.model_construct(
            dataset=self.dataset,
            model=dict(self.model),
            optimizer=OptimizerSpec.model_construct(
                optimizer=arm_spec.optimizer, **arm_spec.hparams
            ),
            lr=float(lr),
            init=init,
            init_scale=float(init_scale),
            seed=int(seed),
            epochs=self.epochs,
            batch_size=self.batch_size,
            schedule=self.schedule,
            precision=self.precision,
            device=device,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            num_threads=None if num_threads is None else int(num_threads),
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def unsafe_text(value: Any, path: str = "") -> tuple[str, str, str] | None:
    """``(field, rule, value)`` for the first string in ``value`` (a spec, or a part of one:
    keys and values of mappings, items of lists, at any depth) that holds a character user
    text must not (:func:`study.text.unsafe_rule`); None if there is none. The value is
    given escaped (:func:`study.text.shown`)."""
    from collections import deque

    todo: deque[tuple[str, Any]] = deque([(path, value)])
    while todo:
        where, item = todo.popleft()
        if isinstance(item, str):
            rule = unsafe_rule(item)
            if rule is not None:
                return where, rule, shown(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                field = f"{where}.{shown(str(key))}" if where else shown(str(key))
                if isinstance(key, str):
                    rule = unsafe_rule(key)
                    if rule is not None:
                        return field, f"(a key) {rule}", shown(key)
                todo.append((field, child))
        elif isinstance(item, list | tuple):
            todo.extend((f"{where}.{i}".lstrip("."), child) for i, child in enumerate(item))
    return None


def parse_spec(data: Any, *, source: str | None = None) -> StudySpec:
    """Validate ``data`` (a mapping) as a StudySpec, raising SpecError listing every problem."""
    if not isinstance(data, dict):
        raise SpecError(
            [{"field": "spec", "rule": "must be a mapping of keys", "value": data}], source=source
        )
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        problems = spec_problems(exc, root=StudySpec)
        raise SpecError(arms_by_name(problems, data), source=source) from None


def arms_by_name(problems: list[dict[str, Any]], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems inside an arm name the arm as the spec does, by its name: ``arms.sgd.momentum``
    rather than ``arms.0.momentum``. The index stays where the name cannot name it: a problem
    with the name itself, an arm whose name is not a valid one, or a name two arms share.

        >>> arms_by_name([{"field": "arms.1.optimizer", "rule": "r", "value": "x"}],
        ...              {"arms": [{"name": "sgd"}, {"name": "insgd"}]})[0]["field"]
        'arms.insgd.optimizer'
    """
    arms = data.get("arms")
    if not isinstance(arms, list):
        return problems
    names = [arm.get("name") if isinstance(arm, dict) else None for arm in arms]
    out = []
    for problem in problems:
        parts = str(problem.get("field", "")).split(".")
        if len(parts) >= 3 and parts[0] == "arms" and parts[1].isdigit() and parts[2] != "name":
            index = int(parts[1])
            name = names[index] if index < len(names) else None
            if isinstance(name, str) and NAME_RE.fullmatch(name) and names.count(name) == 1:
                problem = {**problem, "field": ".".join(["arms", name, *parts[2:]])}
        out.append(problem)
    return out


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a YAML spec file (a YAML syntax error names the file and line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(
            [
                {
                    "field": "spec",
                    "rule": f"must be a readable file ({exc.strerror})",
                    "value": str(path),
                }
            ]
        ) from None
    from study.bounded import BoundedInputError, load_yaml

    try:
        data = load_yaml(text)
    except BoundedInputError as exc:
        where = str(path)
        if exc.line is not None:
            where += f":{exc.line}:{exc.column or 1}"
        problem = {"field": "spec", "rule": f"{exc.rule} at {where}", "value": str(path)}
        raise SpecError([problem]) from None
    return parse_spec(data, source=str(path))
