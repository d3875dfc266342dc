"""The grid sampler: a study's grid points drawn by index, without listing the grid."""

from __future__ import annotations

from typing import Any

from optuna.samplers import BaseSampler


class GridOrder(BaseSampler):
    """The grid sampler: ``count`` distinct points of a grid of ``size``, in a random order
    fixed by ``seed``; the Optuna trial number ``n`` gets the point ``order[n]`` (an index into
    the crossing, decoded by :meth:`StudySpec.grid_point`).

    Only the points that will run are drawn (``random.Random(seed).sample(range(size),
    count)`` keeps ``count`` numbers, whatever ``size``): the crossing is never listed, so a
    grid of 10**12 points costs what a grid of ``count`` does. (Optuna's ``GridSampler``
    listed and shuffled the whole crossing, and scanned it again after every trial.) Every
    arm's sampler has the same seed, so every arm runs the same points in the same order.
    """

    def __init__(self, size: int, count: int, *, seed: int) -> None:
        import random

        if not 1 <= count <= size:
            raise ValueError(f"count must be in [1, size={size}], got {count}")
        self.size = size
        self.order = random.Random(seed).sample(range(size), count)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, param_name: str, distribution: Any):
        return self.order[trial.number % len(self.order)]
