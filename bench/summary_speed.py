"""Benchmark: ``study.analysis.summarize`` on a synthetic table of 10,000 trials.

2 arms (sgd, insgd) x 6 inits x 3 seeds, lr log-uniform over [1e-4, 10] (the same points and
seeds for both arms, as a QMC/grid study gives: fully paired), a smooth accuracy bump in
log-lr whose width depends on the arm, and divergence above an arm-dependent lr. Target: a
few seconds on the project's 2-core machine, importances, the replicate intervals (each seed's
metrics recomputed from its rows) and the expected-max bands included (summary v1, without
them: ~1.2 s).

Prints the total and each part (table, per-arm numbers, importances, bands, point comparison,
replicate intervals), timed side by side in the same run, best of ``--repeat``: wall time, and CPU
time of the process (less disturbed when other jobs share the cores; shares are of CPU time).

    .venv/bin/python bench/summary_speed.py [--trials 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

INITS = (
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "orthogonal",
    "normal",
)
ARMS = {"sgd": (0.7, -1.2, 0.0), "insgd": (1.4, -0.8, 0.5)}  # width (decades), centre, +lr cap
TARGET_S = 4.0


def synthetic_trials(n_trials: int = 10_000, *, seed: int = 0, num_classes: int = 10):
    rng = np.random.default_rng(seed)
    n_seeds, n_arms = 3, len(ARMS)
    n_points = n_trials // (n_arms * n_seeds)
    log_lr = rng.uniform(-4.0, 1.0, n_points)
    inits = rng.integers(0, len(INITS), n_points)
    init_effect = np.linspace(0.0, 0.15, len(INITS))
    rows = []
    for arm, (width, centre, cap) in ARMS.items():
        for p in range(n_points):
            for s in range(n_seeds):
                x = log_lr[p]
                diverged = x > centre + 1.5 + cap
                acc = 0.1 + 0.85 * math.exp(-(((x - centre) / width) ** 2)) - init_effect[inits[p]]
                acc = float(np.clip(acc + rng.normal(0, 0.01), 0.0, 1.0))
                rows.append(
                    {
                        "arm": arm,
                        "lr": float(10**x),
                        "init": INITS[inits[p]],
                        "init_scale": 1.0,
                        "seed": s,
                        "val_acc": None if diverged else acc,
                        "val_loss": None if diverged else float(-math.log(max(acc, 1e-3))),
                        "diverged": bool(diverged),
                        "status": "finished",
                    }
                )
    # the remainder (10,000 is not a multiple of 6): early-stopped rows, left out and counted
    while len(rows) < n_trials:
        rows.append({**rows[len(rows) % 100], "status": "early_stopped"})
    return rows, num_classes


def _best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall time, best CPU time of this process (both in s) and the last result."""
    wall = cpu = math.inf
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from study.analysis.cells import build_cells
    from study.analysis.compare import point_comparison
    from study.analysis.groups import Context, arm_summary
    from study.analysis.importance import importances
    from study.analysis.metrics import expected_max_band
    from study.analysis.replicates import replicate_comparisons
    from study.analysis.summary import summarize
    from study.analysis.table import build_table

    rows, num_classes = synthetic_trials(args.trials)
    arms = list(ARMS)
    summarize(rows[:50], num_classes=num_classes)  # warm the lazy imports (optuna, scipy)

    def total():
        return summarize(rows, num_classes=num_classes, arms=arms, lr_range=(1e-4, 10.0))

    t_total, c_total, summary = _best(total, args.repeat)
    t_table, c_table, table = _best(
        lambda: build_table(rows, num_classes=num_classes, arms=arms), args.repeat
    )
    cells = build_cells(table)
    ref = summary.reference
    ctx = Context(table, cells, 0.02, ref.best_acc, ref.best_loss, -4.0, 1.0)
    groups = [np.flatnonzero(cells.arm == k) for k in range(len(arms))]
    t_arm, c_arm, _ = _best(lambda: [arm_summary(ctx, k) for k in range(len(arms))], args.repeat)
    t_imp, c_imp, _ = _best(
        lambda: [
            importances(cells.lr[g], cells.init[g], cells.init_scale[g], cells.acc[g])
            for g in groups
        ],
        args.repeat,
    )
    t_band, c_band, _ = _best(lambda: [expected_max_band(cells.acc[g]) for g in groups], 1)
    t_cmp, c_cmp, _ = _best(lambda: point_comparison(ctx, 1, 0), args.repeat)
    t_seed, c_seed, _ = _best(lambda: replicate_comparisons(ctx, [(1, 0)]), args.repeat)
    n_used = summary.settings.n_used
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"summarize: {len(rows)} rows ({n_used} finished, 2 arms x 6 inits x 3 seeds, "
        f"{len(cells)} cells); best of {args.repeat}; load average {load:.1f} on "
        f"{os.cpu_count()} cores"
    )
    print(f"  {'part':<30}{'wall s':>8}{'cpu s':>8}{'share':>8}")
    verdict = "PASS" if t_total < TARGET_S else "FAIL"
    print(
        f"  {'summarize (total)':<30}{t_total:8.3f}{c_total:8.3f}{1:8.0%}"
        f"   target < {TARGET_S:g} s wall: {verdict}"
    )
    for name, t, c in (
        ("build_table (canonical order)", t_table, c_table),
        ("per-arm numbers", t_arm, c_arm),
        ("  of which importances", t_imp, c_imp),
        ("  of which arm-level bands", t_band, c_band),
        ("point comparison (10,000)", t_cmp, c_cmp),
        ("replicate intervals (per seed)", t_seed, c_seed),
    ):
        print(f"  {name:<30}{t:8.3f}{c:8.3f}{c / c_total:8.0%}")
    c = summary.comparisons[0]
    print(
        f"  check: insgd - sgd mean_diff {c.mean_diff:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] "
        f"over {c.n_points} points; auc_diff {c.auc_diff:+.3f} "
        f"[{c.auc_diff_ci[0]:+.3f}, {c.auc_diff_ci[1]:+.3f}]; verdict {c.verdict}"
    )


if __name__ == "__main__":
    main()
