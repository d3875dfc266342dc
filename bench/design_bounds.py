"""How long a study's size takes to judge, and what the grid sampler holds (issue 21, item 1).

The probes of the issue's adversarial pass, beside an accepted spec of normal size:

- ``normal``: the digits quick study (2 arms x a 9-point lr grid, an MLP): accepted;
- ``B1``: lr and init_scale each {1e-300, 1e300, 1000 per decade}, all 8 inits,
  trials_per_arm 1 (2.9e12 grid points): refused by HPROBUST_MAX_DESIGN_POINTS;
- ``B5``: toy_cnn width 1e9 (was a 500): refused by the spec's ceiling (parameters);
- ``Q1``: resnet20 depth 60002 (held the POST 25 s): refused by the spec's ceiling (modules);
- ``Q7``: a synthetic dataset of 10^6 x 64x512x512 (67 TB): refused by HPROBUST_MAX_DATASET_MB.

It prints, for ``--repeat`` rounds each:

1. ``check``: in process, what POST /studies does with a body: ``parse_spec`` then the size
   limits (``study.spec.bounds.size_problems``), no HTTP;
2. ``grid``: a 4-million-point grid (10,000 lrs x 8 inits x 50 init scales), 16 points run
   per arm: building Optuna's ``GridSampler`` (what the searcher used: it lists and shuffles
   the whole crossing) against ``study.tune.searcher.GridOrder`` (draws the 16), time and
   peak memory (tracemalloc);
3. ``POST``: the whole round trip to a real ``hprobust serve`` (422 for a probe, 202 for the
   normal spec, after one untimed POST that makes the store), unless ``--no-serve``. Without
   ``--url`` it starts its own on a temporary data dir, its Ray address pointing at nothing
   (the limits need no Ray; the normal studies are recorded and then wait for Ray).

No timing is asserted anywhere: these are figures to read side by side, measured in one run
on one machine (the client shares its cores with the service).

    .venv/bin/python bench/design_bounds.py [--repeat 20] [--no-serve] [--url URL --token T]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HUGE = {"low": 1e-300, "high": 1e300, "points_per_decade": 1000}
NORMAL: dict[str, Any] = {
    "name": "normal",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 1e-3, "high": 10.0, "points_per_decade": 2}, "init": ["normal"]},
    "epochs": 2,
}


def cases() -> dict[str, dict[str, Any]]:
    from models import INIT_SCHEMES

    return {
        "normal": NORMAL,
        "B1": {
            **NORMAL,
            "search": {"lr": HUGE, "init_scale": HUGE, "init": list(INIT_SCHEMES)},
            "trials_per_arm": 1,
        },
        "B5": {**NORMAL, "model": {"name": "toy_cnn", "width": 10**9}},
        "Q1": {**NORMAL, "model": {"name": "resnet20", "depth": 60002}},
        "Q7": {
            **NORMAL,
            "dataset": {
                "name": "synthetic",
                "n_train": 10**6,
                "n_val": 200,
                "shape": [64, 512, 512],
            },
            "model": {"name": "toy_cnn", "width": 4},
        },
    }


def _bench_helpers() -> Any:
    """bench/input_bounds.py's ``stats`` and ``serve`` (one way to print and to start)."""
    spec = importlib.util.spec_from_file_location("input_bounds", ROOT / "bench/input_bounds.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def check(data: dict[str, Any]) -> str:
    """What POST /studies does with a parsed body: the spec, then the size limits."""
    from study.errors import SpecError
    from study.spec.bounds import SizeLimits, size_problems
    from study.spec.study_spec import parse_spec

    try:
        problems = size_problems(parse_spec(data), SizeLimits())
    except SpecError as exc:
        problems = exc.problems
    return "accepted" if not problems else "refused: " + ", ".join(p["field"] for p in problems)


def bench_checks(helpers: Any, repeat: int) -> None:
    print("1. check (parse_spec + size limits, in process)")
    check(NORMAL)  # imports (torch for the meta build) once, outside the timings
    for label, data in cases().items():
        times, outcome = [], ""
        for _ in range(repeat):
            start = time.perf_counter()
            outcome = check(data)
            times.append(time.perf_counter() - start)
        helpers.stats(f"  {label:<7} {outcome}", times)


def _measure(build: Any) -> tuple[float, int]:
    """Seconds of one build (timed alone), and the peak memory of another (tracemalloc, which
    slows allocation down too much to time under it)."""
    start = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - start
    del built
    tracemalloc.start()
    try:
        built = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del built
    return seconds, peak


def bench_grid(repeat: int) -> None:
    import optuna

    from study.tune.searcher import GridOrder

    lrs = [10 ** (-3 + 4 * i / 9999) for i in range(10_000)]
    scales = [10 ** (-1 + 2 * i / 49) for i in range(50)]
    inits = [f"init{i}" for i in range(8)]
    size = len(lrs) * len(inits) * len(scales)
    print(f"2. grid of {size:,} points, 16 run per arm: build the sampler")
    for label, build in (
        (
            "optuna GridSampler",
            lambda: optuna.samplers.GridSampler(
                {"lr": lrs, "init": inits, "init_scale": scales}, seed=0
            ),
        ),
        ("GridOrder", lambda: GridOrder(size, 16, seed=0)),
    ):
        rounds = [_measure(build) for _ in range(max(1, min(repeat, 3)))]
        seconds = sorted(s for s, _ in rounds)[len(rounds) // 2]
        peak = max(p for _, p in rounds)
        print(f"  {label:<20} median {seconds * 1000:10.2f} ms   peak {peak / 1e6:8.2f} MB")


def bench_posts(helpers: Any, repeat: int, url: str | None, token: str | None) -> None:
    import httpx

    tmp = proc = None
    if url is None:
        tmp = Path(tempfile.mkdtemp(prefix="hpr-bench-design-"))
        proc, token, url = helpers.serve(tmp)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    print(f"3. POST /studies to {url}")
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            client.post("/studies", json=NORMAL, headers=headers)  # the store's first write
            for label, data in cases().items():
                times, codes = [], set()
                rounds = min(5, repeat) if label == "normal" else repeat  # a 202 records one
                for _ in range(rounds):
                    start = time.perf_counter()
                    r = client.post("/studies", json=data, headers=headers)
                    times.append(time.perf_counter() - start)
                    codes.add(r.status_code)
                    if r.status_code not in (202, 422):
                        raise SystemExit(f"{label}: {r.status_code} {r.text[:300]}")
                helpers.stats(f"  {label:<7} {sorted(codes)}", times)
    finally:
        if proc is not None:
            from service.stack import stop_group

            stop_group(proc.pid, grace_s=10)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-serve", action="store_true", help="skip the POST round trips")
    parser.add_argument("--url", help="an existing service (default: start one)")
    parser.add_argument("--token", help="its bearer token")
    args = parser.parse_args()
    helpers = _bench_helpers()
    bench_checks(helpers, args.repeat)
    bench_grid(args.repeat)
    if not args.no_serve:
        bench_posts(helpers, args.repeat, args.url, args.token)


if __name__ == "__main__":
    main()
