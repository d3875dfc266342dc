"""The Optuna samplers a spec may name (``sampler:``): each one's builder and what it means for
the design. The spec takes its names from here and the searcher builds from here; adding a
sampler is one :class:`SamplerKind` in :data:`SAMPLERS`. Optuna is imported by the builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplerKind:
    """``build(spec)``: the Optuna sampler of a :class:`~study.spec.study_spec.StudySpec`,
    seeded with ``spec.seed``. ``paired``: it never looks at trial values, so every arm (one
    sampler each, the same seed) gets the same points. ``grid``: it runs the spec's grid of
    lr x init (x init_scale); else it draws from the ranges."""

    build: Callable[[Any], Any]
    paired: bool
    grid: bool = False


def _qmc(spec: Any) -> Any:
    import warnings

    import optuna

    # QMCSampler is marked experimental: its warning is dropped here only (a process-wide
    # filter would hide every other ExperimentalWarning of the caller's process too).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(
            seed=spec.seed, scramble=True, warn_independent_sampling=False
        )


def _tpe(spec: Any) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=spec.seed)


def _random(spec: Any) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=spec.seed)


def _grid(spec: Any) -> Any:
    from study.tune.grid import GridOrder  # the crossing is drawn by index, never listed

    return GridOrder(spec.grid_size or 1, spec.points_per_arm, seed=spec.seed)


#: Every sampler a spec may name, in the order the docs list them.
SAMPLERS: dict[str, SamplerKind] = {
    "qmc": SamplerKind(_qmc, paired=True),
    "tpe": SamplerKind(_tpe, paired=False),
    "random": SamplerKind(_random, paired=True),
    "grid": SamplerKind(_grid, paired=True, grid=True),
}
