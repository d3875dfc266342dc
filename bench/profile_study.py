"""Profile: where one small study's time goes, end to end (the recipe behind issue 24's note).

Two runs of the same small study through ``hprobust run`` (digits / toy_cnn, 2 arms x
``--points``, concurrency 1, 1 CPU per trial), each in a fresh process like a user's:

1. **py-spy** (``.venv/bin/py-spy record --subprocesses --format raw``) samples the driver and
   every Python process Ray starts (the trial actor, Ray's helper processes); printed: the
   CPU samples per process kind and the heaviest frames (inclusive) of the driver and the
   trial actor. Raw stacks are kept in ``--out`` for a flame graph
   (``py-spy record --format speedscope`` gives one directly).
2. **cProfile** of the driver process alone (wall time, so waits count): the stages of
   ``hprobust run`` - imports, Ray start, the store, preflight, Tune's loop, finalization,
   Ray shutdown - with their cumulative seconds.

Then the MLflow records give the study's own split: start-up (process start to the first
trial's start), the trials' span, finalization (last trial's end to exit) and the mean gap
between two trials on the reused actor.

    .venv/bin/python bench/profile_study.py [--epochs 12] [--points 2] [--out /tmp/prof]

py-spy needs ptrace on its children (allowed for a process's own children in most
containers); without py-spy only the cProfile run is made.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

#: cProfile functions whose cumulative wall time makes the stages of ``hprobust run``.
STAGES = (
    ("ray start", "start_ray"),
    ("store + study record", "_open"),
    ("preflight (data + model)", "preflight"),
    ("study run (driver)", "drive"),
    ("Tune loop (tuner.fit)", "fit"),
    ("finalize (summary, plots)", "finalize"),
    ("Ray shutdown", "stop_ray"),
)


def spec(points: int, epochs: int) -> dict:
    return {
        "name": "bench-profile",
        "dataset": "digits",
        "model": {"name": "toy_cnn"},
        "arms": [
            {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
            {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
        ],
        "search": {"lr": {"low": 1e-3, "high": 0.3}, "init": ["kaiming_normal"]},
        "sampler": "qmc",
        "trials_per_arm": points,
        "epochs": epochs,
        "batch_size": 64,
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 1},
    }


def study_split(data_dir: Path, study_id: str, start_ms: float, end_ms: float) -> str:
    """The study's split, from its MLflow records."""
    from study.records.store import StudyStore, sqlite_uri

    store = StudyStore(sqlite_uri(data_dir))
    runs = sorted(store.trial_runs(study_id), key=lambda r: r.info.start_time)
    first, last = runs[0].info.start_time, max(r.info.end_time for r in runs)
    gaps = [(b.info.start_time - a.info.end_time) / 1e3 for a, b in itertools.pairwise(runs)]
    inside = sum(r.info.end_time - r.info.start_time for r in runs) / 1e3 / len(runs)
    return (
        f"start-up {(first - start_ms) / 1e3:.2f} s | trials {(last - first) / 1e3:.2f} s "
        f"({len(runs)} runs, {inside:.2f} s each, gap {sum(gaps) / max(1, len(gaps)):.2f} s) | "
        f"finalization {(end_ms - last) / 1e3:.2f} s"
    )


def run_study(
    tmp: Path, name: str, points: int, epochs: int, launcher: list[str]
) -> tuple[Path, float]:
    """Run the study with ``launcher`` (the command line up to ``hprobust``'s arguments)."""
    data_dir = tmp / name
    spec_path = tmp / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(spec(points, epochs)))
    args = ["run", str(spec_path), "--data-dir", str(data_dir), "--num-cpus", "2"]
    command = [*launcher, *args]
    start_ms = time.time() * 1e3
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    study_id = re.search(r"study (s\d{8}-\d{6}-[0-9a-f]{6})", done.stdout).group(1)
    split = study_split(data_dir, study_id, start_ms, time.time() * 1e3)
    print(f"[{name:8}] wall {wall:6.2f} s; {split}", flush=True)
    return data_dir, wall


DRIVER = "driver (hprobust run)"


def process_kind(header: str) -> str:
    """A py-spy process frame (``process 12:"cmdline"``) -> what the process is."""
    cmd = header.split(":", 1)[-1]
    if "from study.cli import app" in cmd:
        return DRIVER
    for marker, kind in (
        ("default_worker.py", "Ray worker (trial actor)"),
        ("dashboard", "Ray dashboard / agent"),
        ("log_monitor", "Ray log monitor"),
        ("runtime_env", "Ray runtime-env agent"),
        ("monitor.py", "Ray autoscaler monitor"),
    ):
        if marker in cmd:
            return kind
    return cmd.strip('"')[:60]


def summarize_pyspy(raw: Path, top: int) -> None:
    samples: collections.Counter[str] = collections.Counter()
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        header, frames, depth = "?", stack, 0
        while frames.startswith("process ") and '";' in frames:  # parent processes first
            header, frames = frames.split('";', 1)  # (a command line may hold ';')
            depth += 1
        # the process py-spy started (no parent in the line) is the driver, whatever its
        # command line reads: Ray's driver shows an empty one in /proc
        kind = DRIVER if depth == 1 else process_kind(header)
        n = int(count)
        samples[kind] += n
        seen = set()
        for frame in frames.split(";"):
            if frame.startswith("thread ") or frame in seen:
                continue
            seen.add(frame)
            inclusive[kind][re.sub(r"\s*\(/.*site-packages/", " (", frame)] += n
    total = sum(samples.values()) or 1
    print("\npy-spy CPU samples per process (100 Hz; a core busy 1 s = 100):")
    for kind, n in samples.most_common():
        print(f"  {n:7d}  {100 * n / total:5.1f} %  {kind}")
    for kind in (DRIVER, "Ray worker (trial actor)"):
        if kind not in inclusive:
            continue
        print(f"\nheaviest frames (inclusive samples) of the {kind}:")
        for frame, n in inclusive[kind].most_common(top):
            print(f"  {n:7d}  {frame[:150]}")


def summarize_cprofile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    rows = stats.stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    print("\ncProfile of the driver process (wall seconds, cumulative):")
    for label, name in STAGES:
        cts = [v[3] for k, v in rows.items() if k[2] == name and "study" in k[0]] or [
            v[3] for k, v in rows.items() if k[2] == name and "tune" in k[0]
        ]
        if cts:
            print(f"  {max(cts):8.2f} s  {label}")
    print(f"\ntop {top} functions by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="~0.1 s each")
    parser.add_argument("--points", type=int, default=2, help="points per arm (2 arms)")
    parser.add_argument("--out", default=None, help="keep the raw profiles here")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpr-profile-") as tmp_name:
        tmp = Path(args.out) if args.out else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        script = tmp / "hprobust_cli.py"
        script.write_text("from study.cli import app\n\napp()\n")
        cli = [sys.executable, "-c", "from study.cli import app; app()"]
        run_study(tmp, "plain", args.points, args.epochs, cli)
        raw = tmp / "pyspy.txt"
        if py_spy:
            wrap = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", "100"]
            wrap += ["--nonblocking", "--output", str(raw), "--"]
            run_study(tmp, "py-spy", args.points, args.epochs, [*wrap, *cli])
        cprof = tmp / "driver.cprof"
        profiled = [sys.executable, "-m", "cProfile", "-o", str(cprof), str(script)]
        run_study(tmp, "cProfile", args.points, args.epochs, profiled)
        if raw.exists():
            summarize_pyspy(raw, args.top)
        if cprof.exists():
            summarize_cprofile(cprof, args.top)
        print(f"\n(the machine's load while profiling: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
