"""Hyperparameter importances of one arm with Optuna's evaluators, on its cells.

Each cell of the arm (one per distinct ``(lr, init, init_scale)``, value ``ā``: the seed mean
of the imputed accuracy), in canonical order so the result does not depend on row order,
becomes a COMPLETE trial of an in-memory, maximizing Optuna study
over ``lr`` (log float), ``init`` (categorical) and ``init_scale`` (log float, only when it
varies). Then :func:`optuna.importance.get_param_importances` with
``PedAnovaImportanceEvaluator()`` (Optuna's defaults) and
``FanovaImportanceEvaluator(seed=0, n_trees=32, max_depth=6)``. Both are normalized to sum to 1.

The forest is smaller than Optuna's default (64 trees of depth 64) because Optuna's fANOVA is
pure Python and its cost grows with the number of split points; docs/summary.md ("Why a small
fANOVA forest") gives the measurement behind that choice, and bench/summary_speed.py times the
importances as they are.

Either is ``None`` when there are fewer than 2 distinct points, when every point has the same
accuracy (no variance to attribute; Optuna would return an arbitrary equal split), or when
Optuna raises.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np

FANOVA_SEED = 0
FANOVA_TREES = 32
FANOVA_MAX_DEPTH = 6


def importances(
    lr: np.ndarray, init: np.ndarray, init_scale: np.ndarray, value: np.ndarray
) -> dict[str, dict[str, float] | None]:
    """``{"ped_anova": {param: value} | None, "fanova": {param: value} | None}`` over the
    cells given as columns (one entry per cell, canonical order)."""
    points = list(zip(lr.tolist(), init.tolist(), init_scale.tolist(), value.tolist(), strict=True))
    values = np.asarray(value, dtype=np.float64)
    if len(points) < 2 or np.ptp(values) == 0.0:
        return {"ped_anova": None, "fanova": None}

    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    lrs = [p[0] for p in points]
    scales = [p[2] for p in points]
    distributions: dict[str, Any] = {
        "lr": FloatDistribution(min(lrs), max(lrs), log=True),
        "init": CategoricalDistribution(sorted({p[1] for p in points})),
    }
    if min(scales) != max(scales):
        distributions["init_scale"] = FloatDistribution(min(scales), max(scales), log=True)
    params = list(distributions)

    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(direction="maximize")
            study.add_trials(
                [
                    optuna.trial.create_trial(
                        params={"lr": lr, "init": init, "init_scale": scale}
                        if "init_scale" in distributions
                        else {"lr": lr, "init": init},
                        distributions=distributions,
                        value=value,
                    )
                    for lr, init, scale, value in points
                ]
            )
            out: dict[str, dict[str, float] | None] = {}
            for name, evaluator in (
                ("ped_anova", PedAnovaImportanceEvaluator()),
                (
                    "fanova",
                    FanovaImportanceEvaluator(
                        seed=FANOVA_SEED, n_trees=FANOVA_TREES, max_depth=FANOVA_MAX_DEPTH
                    ),
                ),
            ):
                try:
                    result = get_param_importances(study, evaluator=evaluator, params=params)
                except Exception:  # Optuna cannot compute it for this table: report null
                    out[name] = None
                    continue
                clean = {k: float(v) for k, v in result.items()}
                out[name] = clean if all(math.isfinite(v) for v in clean.values()) else None
    finally:
        logger.setLevel(level)
    return out
