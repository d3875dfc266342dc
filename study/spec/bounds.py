"""How big a study is, from its spec alone, and the limits a service or ``hprobust run`` puts
on that: the design's points, the model's parameters and activations, the dataset. Every
size is computed in closed form (nothing is built, listed or loaded), so a spec of any size
is judged in about a millisecond.

- the design: per arm, the grid's crossing ``lr points x inits (x init_scale points)`` for
  ``sampler: grid`` (however few of them ``trials_per_arm`` runs), else ``trials_per_arm``
  points; :data:`SizeLimits.max_design_points`. (The trials themselves, arms x points run x
  seeds, are the service's ``HPROBUST_MAX_TRIALS_PER_STUDY``.)
- the model: parameters and activation memory per sample (float32), from
  :func:`models.size.estimate_size`; :data:`SizeLimits.max_model_params`,
  :data:`SizeLimits.max_activation_mb`.
- the dataset: every sample of both splits as float32 (how trials load it);
  :data:`SizeLimits.max_dataset_mb`.

:func:`size_problems` lists what a spec breaks as ``{field, rule, value}``; the service
(``service.studies.limit_problems``, with its ``Settings``) and ``hprobust run`` (with
:meth:`SizeLimits.from_env`: the same ``HPROBUST_*`` variables) refuse with the same words.

    >>> from study.spec.study_spec import parse_spec
    >>> huge = {"low": 1e-300, "high": 1e300, "points_per_decade": 1000}
    >>> spec = parse_spec({"name": "x", "dataset": "digits", "model": {"name": "mlp"},
    ...     "arms": [{"name": "sgd", "optimizer": "sgd"}], "trials_per_arm": 1,
    ...     "search": {"lr": huge, "init_scale": huge, "init": ["normal"]}})
    >>> [(p["field"], p["value"]) for p in size_problems(spec, SizeLimits())]
    [('search', 360001200001)]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from study.errors import ConfigError
from study.spec.model_check import count_text, model_field, model_size

if TYPE_CHECKING:  # pragma: no cover
    from models.size import ModelSize
    from study.spec.study_spec import StudySpec

MB = 1_000_000

#: Python process, torch and a Ray worker: what one trial process holds before its data and
#: model (measured: about 0.75 GB each on CPU; issue 21, probe Q2).
TRIAL_PROCESS_BYTES = 750 * MB


@dataclass(frozen=True)
class SizeLimits:
    """The largest study a service (``Settings``) or ``hprobust run`` accepts. Each field is
    also the environment variable ``HPROBUST_<FIELD>``; the defaults are the service's."""

    #: Points of one arm's design: the grid's crossing, or trials_per_arm.
    max_design_points: int = 1_000_000
    #: Parameters of the model.
    max_model_params: int = 200_000_000
    #: Activation memory of one sample in a forward pass (MB, float32).
    max_activation_mb: float = 256.0
    #: The dataset in memory: every sample of both splits, float32 (MB).
    max_dataset_mb: float = 4096.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SizeLimits:
        """The limits in ``environ`` (default ``os.environ``): ``HPROBUST_MAX_DESIGN_POINTS``
        ..., each default where unset. ConfigError naming the variable for a value that is not
        a positive number."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = env_name(field.name)
            text = environ.get(name)
            if text is None or not text.strip():
                continue
            kind = int if field.type in ("int", int) else float
            try:
                value = kind(text.strip())
            except ValueError:
                value = None
            if value is None or not value > 0 or not math.isfinite(value):
                raise ConfigError(f"{name} must be a number > 0, got {text!r}")
            values[field.name] = value
        return cls(**values)


def env_name(field: str) -> str:
    """``max_design_points`` -> ``HPROBUST_MAX_DESIGN_POINTS``."""
    return f"HPROBUST_{field.upper()}"


def _mb(n_bytes: float) -> str:
    """``1.2 GB``, ``35 MB``, ``67 TB``."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes / 10**6:.2g} MB"


# ---- the design -----------------------------------------------------------------------------


def design_points(spec: StudySpec) -> tuple[int, str]:
    """Points of one arm's design and how they come about: the grid's crossing (``"lr 600001
    points x init_scale 600001 points x 8 inits"``), or ``trials_per_arm``."""
    if spec.sampler != "grid":
        return spec.points_per_arm, f"trials_per_arm {spec.points_per_arm} ({spec.sampler})"
    axes = spec.grid_axes()
    parts = [f"lr {axes['lr']} points"]
    if "init_scale" in axes:
        parts.append(f"init_scale {axes['init_scale']} points")
    parts.append(f"{axes['init']} init" + ("s" if axes["init"] != 1 else ""))
    return math.prod(axes.values()), " x ".join(parts)


def design_problems(spec: StudySpec, limits: SizeLimits) -> list[dict[str, Any]]:
    points, how = design_points(spec)
    if points <= limits.max_design_points:
        return []
    field = "search" if spec.sampler == "grid" else "trials_per_arm"
    hint = (
        "; lower points_per_decade or points, narrow the ranges or use fewer inits"
        if spec.sampler == "grid"
        else ""
    )
    return [
        {
            "field": field,
            "rule": f"must give at most {limits.max_design_points} points per arm "
            f"({env_name('max_design_points')}); the design has {count_text(points)}: {how}{hint}",
            "value": points,
        }
    ]


# ---- the model ------------------------------------------------------------------------------


def _model_words(model: Mapping[str, Any], dataset: Any) -> str:
    from study.data.registry import dataset_info

    info = dataset_info(dataset)
    options = ", ".join(f"{k} {v}" for k, v in model.items() if k != "name")
    return f"{model['name']}{' with ' + options if options else ''} on {info.name} inputs " + (
        f"{tuple(info.in_shape)}"
    )


def model_problems(
    spec: StudySpec, limits: SizeLimits, size: ModelSize | None = None
) -> list[dict[str, Any]]:
    size = size or model_size(spec.model, spec.dataset)
    field, value = model_field(spec.model, size)
    words = _model_words(spec.model, spec.dataset)
    problems = []
    if size.params > limits.max_model_params:
        problems.append(
            {
                "field": field,
                "rule": f"must keep the model at most {count_text(limits.max_model_params)} "
                f"parameters ({env_name('max_model_params')}); {words} has "
                f"{count_text(size.params)} (estimated from its options; nothing was built)",
                "value": value,
            }
        )
    if size.activation_bytes > limits.max_activation_mb * MB:
        batch = size.activation_bytes * spec.batch_size
        problems.append(
            {
                "field": field,
                "rule": f"must keep the activations of one sample at most "
                f"{limits.max_activation_mb:g} MB ({env_name('max_activation_mb')}); {words} "
                f"keeps about {_mb(size.activation_bytes)} per sample ({_mb(batch)} per "
                f"batch of {spec.batch_size})",
                "value": value,
            }
        )
    return problems


# ---- the dataset ----------------------------------------------------------------------------


def dataset_problems(spec: StudySpec, limits: SizeLimits) -> list[dict[str, Any]]:
    from study.data.registry import dataset_info

    info = dataset_info(spec.dataset)
    if info.input_bytes <= limits.max_dataset_mb * MB:
        return []
    return [
        {
            "field": "dataset",
            "rule": f"must be at most {limits.max_dataset_mb:g} MB in memory "
            f"({env_name('max_dataset_mb')}); {info.name} has {info.samples} samples of "
            f"shape {tuple(info.in_shape)}: {_mb(info.input_bytes)} as float32, loaded by "
            "every trial",
            "value": spec.dataset.model_dump(mode="json"),
        }
    ]


def size_problems(spec: StudySpec, limits: SizeLimits) -> list[dict[str, Any]]:
    """Every limit of ``limits`` the spec breaks (design, model, dataset), as ``{field, rule,
    value}``; ``[]`` when it keeps them all. Closed form: nothing is built or loaded."""
    return [
        *design_problems(spec, limits),
        *model_problems(spec, limits),
        *dataset_problems(spec, limits),
    ]


# ---- memory of one trial ----------------------------------------------------------------------


def trial_memory_bytes(spec: StudySpec) -> int:
    """About what one Ray Tune trial (a pack of ``spec.pack_size`` trials) of this study holds
    in memory: its process (:data:`TRIAL_PROCESS_BYTES`), the dataset twice (made, then
    normalized), and per member the model four times (weights, gradients, two optimizer
    states) and a batch's activations twice (forward and backward)."""
    from study.data.registry import dataset_info

    size = model_size(spec.model, spec.dataset)
    data = dataset_info(spec.dataset).input_bytes
    member = 4 * 4 * size.params + 2 * size.activation_bytes * spec.batch_size
    return TRIAL_PROCESS_BYTES + 2 * data + spec.pack_size * member
