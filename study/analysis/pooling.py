"""Random-effects pooling of one difference over workloads (docs/suites.md, "Pooling").

:func:`random_effects` calls statsmodels' ``combine_effects`` (``method_re="dl"``, ``use_t=True``)
and reads its result; nothing of the meta-analysis is written here. Two things statsmodels 0.15
leaves to the caller, read from its source (``statsmodels/stats/meta_analysis.py``):

- Its DerSimonian-Laird ``tau2`` is ``(Q - (k-1)) / c`` **without** the truncation at 0 (it is
  negative when Q < k - 1, and its random-effects weights ``1/(v + tau2)`` with it). The DL
  estimator is ``max(0, ·)``; with ``tau2 = 0`` the random-effects model is the fixed-effect
  one, so for a negative ``tau2`` the result's fixed-effect attributes (``mean_effect_fe``,
  ``var_hksj_fe``, ``weights_rel_fe``, ``conf_int()[0]`` and ``[2]``) are the DL results.
- Its ``var_hksj_re`` is the plain Hartung-Knapp variance ``q / Σw`` with ``q = Σ w (y - μ)² /
  (k - 1)``; ``conf_int(use_t=True)`` gives ``μ ± t(1 - α/2, k - 1) · sd`` both with it
  (``[3]``) and with the standard variance ``1 / Σw`` (``[1]``). When the estimates agree more
  closely than their standard errors predict (q < 1; identical estimates give q = 0) the plain
  interval is narrower than the standard one, down to a single point: three noisy estimates
  that happen to coincide would "exclude 0". The interval used is therefore the wider of the
  two, the modified Hartung-Knapp interval (Knapp & Hartung 2003; Röver, Knapp & Friede 2015),
  ``μ ± t(1 - α/2, k - 1) · sqrt(max(q, 1) / Σw)``.
- Its ``i2`` is ``1 - (k - 1)/Q``, negative when Q < k - 1, and its Q (``Σ w y² - (Σ w y)² /
  Σ w``) can come out a hair below 0 for identical estimates, which makes that ``i2`` huge. I²
  is ``max(0, 1 - (k - 1)/Q)``, a fraction: statsmodels' ``i2`` when its ``q`` exceeds k - 1,
  else 0.

Every input standard error must be > 0 (an inverse-variance weight of 1/0 is infinite): the
caller decides what a workload whose seeds all agree means (docs/suites.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from study.errors import ConfigError

#: Pooling needs at least this many estimates (a Hartung-Knapp interval has k - 1 df).
MIN_POOLED = 2


@dataclass(frozen=True)
class Pooled:
    """A random-effects meta-analysis of ``k`` estimates (all ``None`` with k < 2)."""

    k: int
    estimate: float | None
    se: float | None
    ci: list[float] | None
    tau2: float | None
    i2: float | None
    weights: list[float] | None  # each estimate's share of the weights 1/(se² + tau2)


def random_effects(
    effects: Sequence[float], ses: Sequence[float], *, level: float = 0.95
) -> Pooled:
    """DerSimonian-Laird ``tau2``, the random-effects estimate and its modified Hartung-Knapp
    interval (Student t with k - 1 df), from statsmodels' ``combine_effects``.

    Args:
        effects: the k estimates (finite).
        ses: their standard errors (finite, > 0), in the same order.
        level: the interval's confidence level, in (0, 1).

    Returns:
        A :class:`Pooled`; with fewer than 2 estimates only ``k`` is set.

    Raises:
        ConfigError: lengths differ, a value is not finite, a standard error is not > 0, or
            ``level`` is outside (0, 1).
    """
    y = np.asarray(effects, dtype=np.float64)
    se = np.asarray(ses, dtype=np.float64)
    if y.ndim != 1 or se.shape != y.shape:
        raise ConfigError(
            f"effects and ses must be two lists of one length, got {y.shape} and {se.shape}"
        )
    if not np.all(np.isfinite(y)):
        raise ConfigError(f"effects must be finite, got {y.tolist()!r}")
    if not (np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ConfigError(f"ses must be finite and > 0, got {se.tolist()!r}")
    if not (0.0 < level < 1.0):
        raise ConfigError(f"level must be in (0, 1), got {level!r}")
    k = int(y.size)
    if k < MIN_POOLED:
        return Pooled(k=k, estimate=None, se=None, ci=None, tau2=None, i2=None, weights=None)

    from statsmodels.stats.meta_analysis import combine_effects

    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # i2 = 1 - 1/(Q/(k-1)) when Q is 0
        res = combine_effects(y, se**2, method_re="dl", use_t=True, alpha=alpha)
        ci_fe, ci_re, ci_fe_hk, ci_re_hk = res.conf_int(alpha=alpha, use_t=True)
        i2 = float(res.i2) if float(res.q) > k - 1 else 0.0
    if float(res.tau2) > 0.0:
        tau2 = float(res.tau2)
        mean = float(res.mean_effect_re)
        var_standard, var_hk = float(res.var_eff_w_re), float(res.var_hksj_re)
        ci_standard, ci_hk = ci_re, ci_re_hk
        weights = res.weights_rel_re
    else:  # DL's max(0, ·): the random-effects model with tau2 = 0 is the fixed-effect one
        tau2 = 0.0
        mean = float(res.mean_effect_fe)
        var_standard, var_hk = float(res.var_eff_w_fe), float(res.var_hksj_fe)
        ci_standard, ci_hk = ci_fe, ci_fe_hk
        weights = res.weights_rel_fe
    hk_wider = var_hk >= var_standard
    ci = ci_hk if hk_wider else ci_standard
    return Pooled(
        k=k,
        estimate=mean,
        se=math.sqrt(max(var_hk, var_standard)),
        ci=[float(ci[0]), float(ci[1])],
        tau2=tau2,
        i2=i2,
        weights=[float(w) for w in np.asarray(weights)],
    )
