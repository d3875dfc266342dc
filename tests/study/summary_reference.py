"""A slow, literal reference for the robustness summary, version 2 (the independent checker).

Written from the summary's definition (docs/summary.md, version 2) and the lead's output
contract, without reading ``study.analysis``: plain Python loops, exact binomials
(``math.comb``, ``fractions``), a hand-written percentile. Only what the contract prescribes
comes from libraries: the bootstrap draws (``numpy.random.default_rng(0)`` and
``rng.integers(0, n, size=(R, n))``), ``scipy.stats.wilcoxon`` and Optuna's importance
evaluators (with the recipe of the importance module that predates version 2).

``reference_summary(...)`` returns a plain dict shaped like ``Summary.model_dump(mode="json")``.
It is meant for small tables: the seed bootstrap is memoized on the multiset of drawn seeds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

EPS = 1e-12  # the contract's slack for ">= threshold" and "< threshold"
EXCLUDED_STATUSES = ("early_stopped", "failed", "running", "pending")
N_BOOTSTRAP = 10_000
N_SEED_BOOTSTRAP = 2_000
N_BAND_BOOTSTRAP = 1_000


# ---- small numeric helpers ------------------------------------------------------------------


def key(x: Any) -> float:
    """lr / init_scale as keyed: rounded to 12 significant digits."""
    return float(f"{float(x):.11e}")


def is_finite_number(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n % 2 == 1:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(values: list[float], q: float) -> float:
    """numpy's default ('linear') percentile, by hand: v[k] + (pos - k)(v[k+1] - v[k])."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    k = math.floor(pos)
    if k + 1 >= len(s):
        return s[-1]
    frac = pos - k
    return s[k] + frac * (s[k + 1] - s[k])


def ge(value: float, threshold: float) -> bool:
    return value >= threshold - EPS


# ---- curves: windows and integrals ----------------------------------------------------------


def curve_at(xs: list[float], ys: list[float], x: float) -> float:
    """The straight-line curve, flat at its end values outside [xs[0], xs[-1]]."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for i in range(len(xs) - 1):
        if xs[i] <= x <= xs[i + 1]:
            t = (x - xs[i]) / (xs[i + 1] - xs[i])
            return ys[i] + t * (ys[i + 1] - ys[i])
    raise AssertionError("unreachable")


def mean_over_range(xs: list[float], ys: list[float], lo: float, hi: float) -> float:
    """(1/(hi-lo)) * integral of the extended curve over [lo, hi]; the value at lo if hi == lo.

    Exact: the integrand is linear between consecutive break points (the knots inside the range
    plus its two ends), so each piece's trapezoid is its exact area.
    """
    if hi == lo:
        return curve_at(xs, ys, lo)
    breaks = sorted({lo, hi} | {x for x in xs if lo < x < hi})
    area = 0.0
    for b0, b1 in itertools.pairwise(breaks):
        area += (b1 - b0) * (curve_at(xs, ys, b0) + curve_at(xs, ys, b1)) / 2
    return area / (hi - lo)


def window_length(xs: list[float], ys: list[float], g: float) -> float:
    """Longest contiguous x-interval within [xs[0], xs[-1]] where the curve is >= g."""
    if len(xs) < 2:
        return 0.0
    good = [ge(y, g) for y in ys]
    pieces: list[tuple[float, float]] = []
    for i in range(len(xs) - 1):
        x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
        if good[i] and good[i + 1]:
            pieces.append((x0, x1))
        elif good[i]:  # going down through g inside the segment
            t = min(1.0, max(0.0, (y0 - g) / (y0 - y1)))
            pieces.append((x0, x0 + t * (x1 - x0)))
        elif good[i + 1]:  # going up through g
            t = min(1.0, max(0.0, (g - y0) / (y1 - y0)))
            pieces.append((x0 + t * (x1 - x0), x1))
    best = 0.0
    run: list[float] | None = None
    for start, end in pieces:
        if run is not None and start <= run[1]:
            run[1] = max(run[1], end)
        else:
            run = [start, end]
        best = max(best, run[1] - run[0])
    return best


# ---- expected maximum -----------------------------------------------------------------------


def expected_max_exact(values: list[float]) -> list[float]:
    """E[max of n], n = 1..N: sum_i a_(i) C(i-1, n-1) / C(N, n), in exact rationals."""
    s = sorted(values)
    n_all = len(s)
    exact = [Fraction(v) for v in s]
    out = []
    for n in range(1, n_all + 1):
        total = Fraction(0)
        for i in range(1, n_all + 1):
            total += exact[i - 1] * math.comb(i - 1, n - 1)
        out.append(float(total / math.comb(n_all, n)))
    return out


def expected_max_float(values: list[float], weights: list[list[float]]) -> list[float]:
    s = sorted(values)
    return [sum(w * v for w, v in zip(row, s, strict=True)) for row in weights]


def expected_max_band(values: list[float]) -> list[list[float]]:
    """[low, high]: 2.5 / 97.5 percentiles per n over 1,000 resamples of the cells."""
    n_all = len(values)
    if n_all == 0:
        return [[], []]
    weights = [
        [math.comb(i - 1, n - 1) / math.comb(n_all, n) for i in range(1, n_all + 1)]
        for n in range(1, n_all + 1)
    ]
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n_all, size=(N_BAND_BOOTSTRAP, n_all)).tolist()
    curves = [expected_max_float([values[j] for j in draw], weights) for draw in idx]
    low = [percentile([c[n] for c in curves], 2.5) for n in range(n_all)]
    high = [percentile([c[n] for c in curves], 97.5) for n in range(n_all)]
    return [low, high]


# ---- rows and cells -------------------------------------------------------------------------


class Row:
    __slots__ = (
        "a",
        "acc",
        "arm",
        "diverged",
        "ell",
        "finite",
        "flagged",
        "init",
        "loss",
        "lr",
        "scale",
        "seed",
    )

    def __init__(self, t: Mapping[str, Any], num_classes: int) -> None:
        self.arm = str(t["arm"])
        self.lr = key(t["lr"])
        self.init = str(t["init"])
        scale = t.get("init_scale")
        self.scale = key(1.0 if scale is None else scale)
        self.seed = int(t["seed"])
        self.acc = t.get("val_acc")
        self.loss = t.get("val_loss")
        self.flagged = truthy(t.get("diverged", False))
        self.finite = is_finite_number(self.acc) and is_finite_number(self.loss)
        self.diverged = self.flagged or not self.finite
        if self.diverged:
            self.a = 1.0 / num_classes
            self.ell = math.log(num_classes)
        else:
            self.a = float(self.acc)
            self.ell = float(self.loss)

    @property
    def point(self) -> tuple[float, str, float]:
        return (self.lr, self.init, self.scale)


def cells_of(rows: list[Row], weight: dict[int, int] | None = None) -> dict[tuple, list[float]]:
    """(arm, lr, init, scale) -> [a-bar, l-bar] as (weighted) means; weight-0 cells vanish.

    ``rows`` are in canonical order, so the dict is too.
    """
    sums: dict[tuple, list[float]] = {}
    for r in rows:
        w = 1 if weight is None else weight.get(r.seed, 0)
        s = sums.setdefault((r.arm, *r.point), [0.0, 0.0, 0])
        s[0] += w * r.a
        s[1] += w * r.ell
        s[2] += w
    return {c: [s[0] / s[2], s[1] / s[2]] for c, s in sums.items() if s[2] > 0}


def curves(cells: dict[tuple, list[float]], arm: str, ell0: float) -> dict[str, tuple]:
    """init -> (xs, acc ys, clipped-loss ys) of the arm's curve for that init."""
    by: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for (c_arm, lr, init, _scale), (a, loss) in cells.items():
        if c_arm == arm:
            by.setdefault(init, {}).setdefault(lr, []).append((a, min(loss, ell0)))
    out = {}
    for init in sorted(by):
        lrs = sorted(by[init])
        xs = [math.log10(lr) for lr in lrs]
        ys = [mean([a for a, _ in by[init][lr]]) for lr in lrs]
        ls = [mean([cl for _, cl in by[init][lr]]) for lr in lrs]
        out[init] = (xs, ys, ls)
    return out


def best_of(cells: list[tuple[tuple, list[float]]], arm_rank: dict[str, int]) -> tuple:
    """The best cell: highest a-bar; ties lowest l-bar, lr, arm order, init name, init_scale."""

    def rank(item):
        (arm, lr, init, scale), (a, loss) = item
        return (-a, loss, lr, arm_rank[arm], init, scale)

    return min(cells, key=rank)[0]


# ---- groups ---------------------------------------------------------------------------------


def group_summary(
    rows: list[Row],
    cells: list[tuple[tuple, list[float]]],
    ref: dict[str, float],
    arm_rank: dict[str, int],
) -> dict[str, Any]:
    """The keys shared by an arm and an arm x init, except the curve-based ones."""
    if not rows:
        return {
            "n_trials": 0,
            "n_cells": 0,
            "best": None,
            "median": None,
            "worst": None,
            "best_cell": None,
            "divergence_rate": None,
            "failure_rate": None,
            "good_fraction": None,
            "expected_max": [],
            "expected_max_band": [[], []],
        }
    abars = [v[0] for _, v in cells]
    _, lr, init, scale = best_of(cells, arm_rank)
    h, g = ref["h"], ref["g"]
    return {
        "n_trials": len(rows),
        "n_cells": len(cells),
        "best": max(abars),
        "median": median(abars),
        "worst": min(abars),
        "best_cell": {"lr": lr, "init": init, "init_scale": scale},
        "divergence_rate": sum(1 for r in rows if r.diverged) / len(rows),
        "failure_rate": sum(1 for r in rows if r.diverged or r.a < h - EPS) / len(rows),
        "good_fraction": sum(1 for a in abars if ge(a, g)) / len(abars),
        "expected_max": expected_max_exact(abars),
        "expected_max_band": expected_max_band(abars),
    }


def arm_curve_metrics(
    cells: dict[tuple, list[float]],
    arm: str,
    a_star: float,
    g: float,
    ell0: float,
    x_lo: float,
    x_hi: float,
) -> dict[str, Any] | None:
    """Per init window/auc/sensitivity-integral/best, and the arm-level means; None if no cells."""
    per_init = {}
    for init, (xs, ys, ls) in curves(cells, arm, ell0).items():
        best = max(
            a for (c_arm, _, c_init, _), (a, _) in cells.items() if (c_arm, c_init) == (arm, init)
        )
        per_init[init] = {
            "window": window_length(xs, ys, g),
            "auc": mean_over_range(xs, ys, x_lo, x_hi),
            "loss_integral": mean_over_range(xs, ls, x_lo, x_hi),
            "b": best,
        }
    if not per_init:
        return None
    arm_cells = [a for (c_arm, *_), (a, _) in cells.items() if c_arm == arm]
    return {
        "per_init": per_init,
        "window": mean([v["window"] for v in per_init.values()]),
        "auc": mean([v["auc"] for v in per_init.values()]),
        "init_regret": mean([a_star - v["b"] for v in per_init.values()]),
        "good_fraction": sum(1 for a in arm_cells if ge(a, g)) / len(arm_cells),
    }


def sensitivity(loss_integral: float, ell_star: float) -> float:
    s = loss_integral - ell_star
    if -EPS < s < 0:
        return 0.0
    return s


def importance(cells: list[tuple[tuple, list[float]]]) -> dict[str, Any]:
    """PED-ANOVA and fANOVA on the arm's cells, with the pre-v2 importance module's recipe."""
    points = sorted((lr, init, scale, v[0]) for (_, lr, init, scale), v in cells)
    values = [p[3] for p in points]
    if len(points) < 2 or max(values) == min(values):
        return {"ped_anova": None, "fanova": None}
    import logging
    import warnings

    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    lrs = [p[0] for p in points]
    scales = [p[2] for p in points]
    dists: dict[str, Any] = {
        "lr": FloatDistribution(min(lrs), max(lrs), log=True),
        "init": CategoricalDistribution(sorted({p[1] for p in points})),
    }
    varies = min(scales) != max(scales)
    if varies:
        dists["init_scale"] = FloatDistribution(min(scales), max(scales), log=True)
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = optuna.create_study(direction="maximize")
            st.add_trials(
                [
                    optuna.trial.create_trial(
                        params={"lr": lr, "init": init, **({"init_scale": sc} if varies else {})},
                        distributions=dists,
                        value=v,
                    )
                    for lr, init, sc, v in points
                ]
            )
            out: dict[str, Any] = {}
            for name, ev in (
                ("ped_anova", PedAnovaImportanceEvaluator()),
                ("fanova", FanovaImportanceEvaluator(seed=0, n_trees=32, max_depth=6)),
            ):
                try:
                    res = get_param_importances(st, evaluator=ev, params=list(dists))
                except Exception:
                    out[name] = None
                    continue
                res = {k: float(v) for k, v in res.items()}
                out[name] = res if all(math.isfinite(v) for v in res.values()) else None
    finally:
        logger.setLevel(level)
    return out


# ---- comparisons ----------------------------------------------------------------------------


def point_bootstrap_ci(d: list[float]) -> list[float] | None:
    if not d:
        return None
    n = len(d)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, size=(N_BOOTSTRAP, n)).tolist()
    means = [sum(d[j] for j in draw) / n for draw in idx]
    return [percentile(means, 2.5), percentile(means, 97.5)]


def wilcoxon_p(d: list[float]) -> float | None:
    if not any(x != 0 for x in d):
        return None
    import warnings

    from scipy.stats import wilcoxon

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(wilcoxon(d).pvalue)
    except Exception:
        return None
    return p if math.isfinite(p) else None


def paired_diffs(rows: list[Row], arm_a: str, arm_b: str) -> tuple[list, bool]:
    """[(point, abar_A, abar_B)] over shared points restricted to shared seeds; paired?"""
    seeds: dict[tuple[str, tuple], set[int]] = {}
    for r in rows:
        seeds.setdefault((r.arm, r.point), set()).add(r.seed)
    pts_a = {p for (arm, p) in seeds if arm == arm_a}
    pts_b = {p for (arm, p) in seeds if arm == arm_b}
    out = []
    for p in sorted(pts_a & pts_b):
        common = seeds[(arm_a, p)] & seeds[(arm_b, p)]
        if not common:
            continue
        va = [r.a for r in rows if r.arm == arm_a and r.point == p and r.seed in common]
        vb = [r.a for r in rows if r.arm == arm_b and r.point == p and r.seed in common]
        out.append((p, mean(va), mean(vb)))
    return out, pts_a == pts_b


def diff_or_none(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a


# ---- the summary ----------------------------------------------------------------------------


def reference_summary(
    trials: Iterable[Mapping[str, Any]],
    *,
    num_classes: int,
    arms: list[str] | None = None,
    tolerance: float = 0.02,
    lr_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    trials = list(trials)
    chance, ell0 = 1.0 / num_classes, math.log(num_classes)
    excluded = dict.fromkeys(EXCLUDED_STATUSES, 0)
    rows: list[Row] = []
    named: set[str] = set()  # arms named by any input row, left-out ones included
    for t in trials:
        if t.get("arm") is not None:
            named.add(str(t["arm"]))
        status = t.get("status")
        if status is not None and status != "finished":
            excluded[status] = excluded.get(status, 0) + 1
            continue
        rows.append(Row(t, num_classes))
    nonfinite = sum(1 for r in rows if not r.flagged and not r.finite)

    order = list(arms or [])
    order += sorted(named - set(order))
    arm_rank = {a: i for i, a in enumerate(order)}

    def canonical(r: Row):
        return (
            arm_rank[r.arm],
            r.lr,
            r.init,
            r.scale,
            r.seed,
            _sortable(r.acc),
            _sortable(r.loss),
            r.diverged,
        )

    rows.sort(key=canonical)
    cells = cells_of(rows)

    # reference
    if cells:
        a_star = max(v[0] for v in cells.values())
        ell_star = min(min(v[1], ell0) for v in cells.values())
        g = a_star - tolerance
        h = (chance + a_star) / 2
        barm, blr, binit, bscale = best_of(list(cells.items()), arm_rank)
        best_cell = {"arm": barm, "lr": blr, "init": binit, "init_scale": bscale}
    else:
        a_star = ell_star = g = h = None
        best_cell = None
    if lr_range is not None:
        lr_lo, lr_hi = float(lr_range[0]), float(lr_range[1])
    elif rows:
        lr_lo, lr_hi = min(r.lr for r in rows), max(r.lr for r in rows)
    else:
        lr_lo = lr_hi = None
    reference = {
        "best_acc": a_star,
        "best_loss": ell_star,
        "good_threshold": g,
        "learned_threshold": h,
        "tolerance": tolerance,
        "chance_acc": chance,
        "chance_loss": ell0,
        "lr_range": None if lr_lo is None else [lr_lo, lr_hi],
        "best_cell": best_cell,
    }
    ref = {"g": g, "h": h}
    x_lo = None if lr_lo is None else math.log10(lr_lo)
    x_hi = None if lr_hi is None else math.log10(lr_hi)

    # per arm
    arms_out: dict[str, Any] = {}
    full: dict[str, dict | None] = {}
    for arm in order:
        arm_rows = [r for r in rows if r.arm == arm]
        arm_cells = [(c, v) for c, v in cells.items() if c[0] == arm]
        out = group_summary(arm_rows, arm_cells, ref, arm_rank)
        metrics = arm_curve_metrics(cells, arm, a_star, g, ell0, x_lo, x_hi) if arm_cells else None
        full[arm] = metrics
        by_init = {}
        if metrics is not None:
            for init, m in metrics["per_init"].items():
                i_rows = [r for r in arm_rows if r.init == init]
                i_cells = [(c, v) for c, v in arm_cells if c[2] == init]
                item = group_summary(i_rows, i_cells, ref, arm_rank)
                item["lr_window_decades"] = m["window"]
                item["auc"] = m["auc"]
                item["lr_sensitivity"] = sensitivity(m["loss_integral"], ell_star)
                by_init[init] = item
            out["lr_window_decades"] = metrics["window"]
            out["auc"] = metrics["auc"]
            out["lr_sensitivity"] = mean([v["lr_sensitivity"] for v in by_init.values()])
            bs = [m["b"] for m in metrics["per_init"].values()]
            out["init_regret"] = metrics["init_regret"]
            out["init_spread"] = max(bs) - min(bs) if len(bs) >= 2 else None
            out["importance"] = importance(arm_cells)
        else:
            out["lr_window_decades"] = out["auc"] = out["lr_sensitivity"] = None
            out["init_regret"] = out["init_spread"] = None
            out["importance"] = {"ped_anova": None, "fanova": None}
        out["by_init"] = by_init
        arms_out[arm] = out

    # the seed bootstrap: one draw, memoized per multiset of drawn seeds
    seeds_all = sorted({r.seed for r in rows})
    seed_draws: list[dict] | None = None
    if len(seeds_all) >= 2:
        rng = np.random.default_rng(0)
        idx = rng.integers(0, len(seeds_all), size=(N_SEED_BOOTSTRAP, len(seeds_all))).tolist()
        memo: dict[tuple, dict] = {}
        seed_draws = []
        for draw in idx:
            mult = tuple(draw.count(i) for i in range(len(seeds_all)))
            if mult not in memo:
                weight = {s: m for s, m in zip(seeds_all, mult, strict=True)}
                memo[mult] = _resample_metrics(rows, order, weight, tolerance, ell0, x_lo, x_hi)
            seed_draws.append(memo[mult])

    # comparisons
    comparisons = []
    base = order[0] if order else None
    for arm in order[1:]:
        comparisons.append(_compare(rows, base, arm, h, arms_out, seed_draws))

    settings = {
        "num_classes": num_classes,
        "tolerance": tolerance,
        "baseline": base,
        "arms": order,
        "n_rows": len(trials),
        "n_used": len(rows),
        "excluded": excluded,
        "nonfinite_as_diverged": nonfinite,
        "n_seeds": len(seeds_all),
        "n_bootstrap": N_BOOTSTRAP,
        "n_seed_bootstrap": N_SEED_BOOTSTRAP,
        "n_band_bootstrap": N_BAND_BOOTSTRAP,
    }
    return {
        "version": 2,
        "partial": False,
        "reference": reference,
        "arms": arms_out,
        "comparisons": comparisons,
        "settings": settings,
    }


def _sortable(v: Any) -> tuple:
    return (0, float(v)) if is_finite_number(v) else (1, 0.0)


def _resample_metrics(
    rows: list[Row],
    order: list[str],
    weight: dict[int, int],
    tolerance: float,
    ell0: float,
    x_lo: float,
    x_hi: float,
) -> dict[str, dict | None]:
    cells = cells_of(rows, weight)
    if not cells:
        return dict.fromkeys(order)
    a_star = max(v[0] for v in cells.values())
    g = a_star - tolerance
    out = {}
    for arm in order:
        has = any(c[0] == arm for c in cells)
        out[arm] = arm_curve_metrics(cells, arm, a_star, g, ell0, x_lo, x_hi) if has else None
    return out


def _compare(
    rows: list[Row],
    base: str,
    arm: str,
    h: float | None,
    arms_out: dict[str, Any],
    seed_draws: list[dict] | None,
) -> dict[str, Any]:
    pairs, paired = paired_diffs(rows, base, arm)
    d = [b - a for _, a, b in pairs]
    live = [b - a for _, a, b in pairs if ge(max(a, b), h)] if pairs else []
    n = len(d)
    seeds_a = {r.seed for r in rows if r.arm == base}
    seeds_b = {r.seed for r in rows if r.arm == arm}
    A, B = arms_out[base], arms_out[arm]
    out: dict[str, Any] = {
        "arm": arm,
        "baseline": base,
        "paired": paired,
        "n_seeds": len(seeds_a & seeds_b),
        "n_points": n,
        "mean_diff": mean(d) if d else None,
        "ci": point_bootstrap_ci(d),
        "wilcoxon_p": wilcoxon_p(d),
        "n_nonzero": sum(1 for x in d if x != 0),
        "win_rate": (sum(1 for x in d if x > 0) + 0.5 * sum(1 for x in d if x == 0)) / n
        if n
        else None,
        "n_live": len(live),
        "mean_diff_live": mean(live) if live else None,
        "ci_live": point_bootstrap_ci(live),
    }
    metric_keys = {
        "auc": ("auc_diff", "auc"),
        "window": ("window_diff", "lr_window_decades"),
        "good_fraction": ("good_fraction_diff", "good_fraction"),
        "init_regret": ("init_regret_diff", "init_regret"),
    }
    for metric, (name, arm_key) in metric_keys.items():
        out[name] = diff_or_none(B[arm_key], A[arm_key])
        ci = None
        if seed_draws is not None:
            diffs = [
                r[arm][metric] - r[base][metric]
                for r in seed_draws
                if r[arm] is not None and r[base] is not None
            ]
            if diffs:
                ci = [percentile(diffs, 2.5), percentile(diffs, 97.5)]
        out[name + "_ci"] = ci
    if out["n_seeds"] < 3 or n < 6 or out["auc_diff_ci"] is None or out["window_diff"] is None:
        verdict = "not_enough_data"
    elif out["auc_diff_ci"][0] > 0 and out["window_diff"] >= 0:
        verdict = "more_robust"
    elif out["auc_diff_ci"][1] < 0 and out["window_diff"] <= 0:
        verdict = "less_robust"
    else:
        verdict = "no_clear_difference"
    out["verdict"] = verdict
    return out
