"""A slow, literal reference for the robustness summary, version 3 (the independent checker).

Written from the summary's contract (version 2, amended by version 3: docs/summary.md states
both) and the output contract, without reading ``study.analysis``: plain Python loops, exact
binomials (``math.comb``, ``fractions``), a hand-written percentile, a hand-written mean and
standard deviation. Only what the contract prescribes comes from libraries: the bootstrap draws
(``numpy.random.default_rng(0)`` and ``rng.integers(0, n, size=(R, n))``), the Student t
quantile and one-sample t-test (``scipy.stats.t.ppf``, ``scipy.stats.ttest_1samp``),
``scipy.stats.wilcoxon`` and Optuna's importance evaluators (with the recipe of the importance
module that predates version 2).

``reference_summary(...)`` returns a plain dict shaped like ``Summary.model_dump(mode="json")``.
It is meant for small tables.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

EPS = 1e-12  # the contract's slack for ">= threshold" and "< threshold"
EXCLUDED_STATUSES = ("early_stopped", "failed", "running", "pending", "stopped")
N_BOOTSTRAP = 10_000
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
    complete: bool = True,
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
                xs, ys, _ = curves(cells, arm, ell0)[init]
                item["best_lr"], item["range_cut"] = peak_and_cuts(xs, ys, h)
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

    # comparisons
    comparisons = []
    base = order[0] if order else None
    for arm in order[1:]:
        c = _compare(rows, base, arm, h, arms_out)
        c.update(_replicates(rows, base, arm, a_star, g, ell0, x_lo, x_hi))
        c.update(_peaks(arms_out, base, arm))
        c["verdict"] = _verdict(c, complete)
        comparisons.append(c)

    settings = {
        "num_classes": num_classes,
        "tolerance": tolerance,
        "baseline": base,
        "arms": order,
        "n_rows": len(trials),
        "n_used": len(rows),
        "excluded": excluded,
        "nonfinite_as_diverged": nonfinite,
        "n_seeds": len({r.seed for r in rows}),
        "n_bootstrap": N_BOOTSTRAP,
        "n_band_bootstrap": N_BAND_BOOTSTRAP,
    }
    return {
        "version": 3,
        "partial": not complete,
        "reference": reference,
        "arms": arms_out,
        "comparisons": comparisons,
        "settings": settings,
    }


def _sortable(v: Any) -> tuple:
    return (0, float(v)) if is_finite_number(v) else (1, 0.0)


# ---- version 3: where a curve peaks, replicate intervals, verdicts --------------------------


def peak_and_cuts(xs: list[float], ys: list[float], h: float) -> tuple[float | None, list[str]]:
    """best_lr: the lr of the curve's maximum (ties: the lower lr), None when the curve never
    reaches h; range_cut: "low" / "high" when the curve at the lowest / highest lr tried is
    still >= h."""
    top = max(ys)
    best_lr = None
    if ge(top, h):
        for x, y in zip(xs, ys, strict=True):  # xs ascending: the first maximum is the lowest lr
            if y == top:
                best_lr = key(10.0**x)
                break
    cuts = []
    if ge(ys[0], h):
        cuts.append("low")
    if ge(ys[-1], h):
        cuts.append("high")
    return best_lr, cuts


def _peaks(arms_out: dict[str, Any], base: str, arm: str) -> dict[str, Any]:
    """lr_shift_decades (median over shared inits with a best_lr of log10(B / A)) and the
    comparison's range_cut (baseline first, then B; inits by name; low before high)."""
    by_a, by_b = arms_out[base]["by_init"], arms_out[arm]["by_init"]
    shifts = [
        math.log10(by_b[i]["best_lr"]) - math.log10(by_a[i]["best_lr"])
        for i in sorted(set(by_a) & set(by_b))
        if by_a[i]["best_lr"] is not None and by_b[i]["best_lr"] is not None
    ]
    cuts = [
        {"arm": name, "init": init, "end": end}
        for name, by in ((base, by_a), (arm, by_b))
        for init in sorted(by)
        for end in by[init]["range_cut"]
    ]
    return {"lr_shift_decades": median(shifts) if shifts else None, "range_cut": cuts}


def arm_metrics_of_seed(
    rows: list[Row],
    arm: str,
    seed: int,
    a_star: float,
    g: float,
    ell0: float,
    x_lo: float,
    x_hi: float,
) -> dict[str, Any]:
    """The arm's auc, window, good_fraction and init_regret from one seed's rows alone, the
    study-wide reference (A*, g, the lr range) held at its all-seeds value."""
    cells = cells_of([r for r in rows if r.seed == seed])
    return arm_curve_metrics(cells, arm, a_star, g, ell0, x_lo, x_hi)


def sample_sd(values: list[float]) -> float:
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def t_interval(d: list[float]) -> tuple[float | None, list[float] | None]:
    """mean(d), and mean ± t(0.975, n-1) sd / sqrt(n) (None with fewer than 2 values)."""
    if not d:
        return None, None
    m = mean(d)
    if len(d) < 2:
        return m, None
    from scipy.stats import t

    half = float(t.ppf(0.975, len(d) - 1)) * sample_sd(d) / math.sqrt(len(d))
    return m, [m - half, m + half]


def t_test_p(d: list[float]) -> float | None:
    """Two-sided one-sample t-test p of d against 0: None with fewer than 2 values or when d
    is all zeros (0/0); 0 when d is constant and not 0 (t is infinite)."""
    if len(d) < 2:
        return None
    if sample_sd(d) == 0.0:
        return None if mean(d) == 0.0 else 0.0
    import warnings

    from scipy.stats import ttest_1samp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(ttest_1samp(d, 0.0).pvalue)
    return p if math.isfinite(p) else None


def _replicates(
    rows: list[Row],
    base: str,
    arm: str,
    a_star: float | None,
    g: float | None,
    ell0: float,
    x_lo: float | None,
    x_hi: float | None,
) -> dict[str, Any]:
    seeds_a = {r.seed for r in rows if r.arm == base}
    seeds_b = {r.seed for r in rows if r.arm == arm}
    seeds = sorted(seeds_a & seeds_b)
    per_metric: dict[str, list[float]] = {m: [] for m in ("auc", "window", "gf", "regret")}
    for s in seeds:
        ma = arm_metrics_of_seed(rows, base, s, a_star, g, ell0, x_lo, x_hi)
        mb = arm_metrics_of_seed(rows, arm, s, a_star, g, ell0, x_lo, x_hi)
        per_metric["auc"].append(mb["auc"] - ma["auc"])
        per_metric["window"].append(mb["window"] - ma["window"])
        per_metric["gf"].append(mb["good_fraction"] - ma["good_fraction"])
        per_metric["regret"].append(mb["init_regret"] - ma["init_regret"])
    out: dict[str, Any] = {}
    for name, metric in (
        ("auc_diff", "auc"),
        ("window_diff", "window"),
        ("good_fraction_diff", "gf"),
        ("init_regret_diff", "regret"),
    ):
        out[name], out[name + "_ci"] = t_interval(per_metric[metric])
    d = per_metric["auc"]
    out["auc_diff_se"] = sample_sd(d) / math.sqrt(len(d)) if len(d) >= 2 else None
    out["auc_p"] = t_test_p(per_metric["auc"])
    return out


def _verdict(c: dict[str, Any], complete: bool) -> str:
    if not complete:
        return "pending"
    auc, window = c["auc_diff_ci"], c["window_diff_ci"]
    if c["n_seeds"] < 3 or c["n_points"] < 6 or auc is None or window is None:
        return "not_enough_data"
    if c["range_cut"]:
        return "range_limited"
    auc_up, auc_down = auc[0] > 0, auc[1] < 0
    win_up, win_down = window[0] > 0, window[1] < 0
    if (auc_up and win_down) or (auc_down and win_up):
        return "mixed"
    if auc_up:
        return "more_robust"
    if auc_down:
        return "less_robust"
    return "no_clear_difference"


def _compare(
    rows: list[Row],
    base: str,
    arm: str,
    h: float | None,
    arms_out: dict[str, Any],
) -> dict[str, Any]:
    pairs, paired = paired_diffs(rows, base, arm)
    d = [b - a for _, a, b in pairs]
    live = [b - a for _, a, b in pairs if ge(max(a, b), h)] if pairs else []
    n = len(d)
    seeds_a = {r.seed for r in rows if r.arm == base}
    seeds_b = {r.seed for r in rows if r.arm == arm}
    return {
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
