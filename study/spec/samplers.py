"""The Optuna samplers a spec may name (``sampler:``): each one's builder and what it means for
the design. The spec takes its names from here and the searcher builds from here; adding a
sampler is one :class:`SamplerKind` in :data:`SAMPLERS`. Optuna is imported by the builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplerKind:
    """``build(seed, grid)``: the Optuna sampler (``grid``: the spec's grid values by name,
    used by grid samplers). ``paired``: it never looks at trial values, so every arm (one
    sampler each, the same seed) gets the same points. ``grid``: it runs the spec's grid of
    lr x init (x init_scale); else it draws from the ranges."""

    build: Callable[[int, dict[str, list[Any]]], Any]
    paired: bool
    grid: bool = False


def _qmc(seed: int, grid: dict[str, list[Any]]) -> Any:
    import warnings

    import optuna

    # QMCSampler is marked experimental: its warning is dropped here only (a process-wide
    # filter would hide every other ExperimentalWarning of the caller's process too).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)


def _tpe(seed: int, grid: dict[str, list[Any]]) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(seed: int, grid: dict[str, list[Any]]) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(seed: int, grid: dict[str, list[Any]]) -> Any:
    import optuna

    return optuna.samplers.GridSampler(grid, seed=seed)


#: Every sampler a spec may name, in the order the docs list them.
SAMPLERS: dict[str, SamplerKind] = {
    "qmc": SamplerKind(_qmc, paired=True),
    "tpe": SamplerKind(_tpe, paired=False),
    "random": SamplerKind(_random, paired=True),
    "grid": SamplerKind(_grid, paired=True, grid=True),
}
