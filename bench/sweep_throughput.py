"""Benchmark: a sweep of many short trials through ``hprobust run`` against the bare loop of
the same trials divided over the same slots.

The sweep: ``--trials`` (default 200) trials of about ``--seconds`` (default 1) of training
each (digits / mlp, the epochs calibrated here so that one trial takes that long), 2 arms,
qmc points x 2 seeds, ``--slots`` (default 2) trials at once, 1 CPU each. The bare loop: the
very same trial configs (read back from the study's MLflow records) dealt round-robin to
``--slots`` fresh Python processes running side by side, each a loop of
``study.train.trial.train_trial`` (interpreter start and imports included, as for
``hprobust run``); its wall time is the time of the slowest slot.

Measured ABBA in one run (study, bare, bare, study) so that a machine whose load drifts
weighs on both sides alike; printed: each wall time, the ratio of the means, the study's
start-up / trials / finalization split and the per-trial tax. Target (issue 24): ratio
<= 1.15.

    .venv/bin/python bench/sweep_throughput.py [--trials 200] [--seconds 1] [--slots 2]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def calibrate(seconds: float, data_dir: Path) -> tuple[int, float]:
    """``(epochs, seconds per epoch)``: the epochs of digits / mlp that take ``seconds``."""
    from study.spec.study_spec import StudySpec
    from study.train.trial import train_trial

    probe = StudySpec.model_validate(spec(2, 1, 1))
    config = probe.trial_config(
        "sgd", lr=0.05, init="kaiming_normal", init_scale=1.0, seed=0,
        data_dir=str(data_dir), num_threads=1,
    )  # fmt: skip
    train_trial(config)  # warm: the dataset, torch's first calls
    start = time.perf_counter()
    for _ in range(3):
        train_trial(config)
    per_epoch = (time.perf_counter() - start) / 3
    return max(1, round(seconds / per_epoch)), per_epoch


def spec(points: int, epochs: int, slots: int) -> dict:
    return {
        "name": "bench-sweep",
        "dataset": "digits",
        "model": {"name": "mlp"},
        "arms": [
            {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
            {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
        ],
        "search": {"lr": {"low": 1e-3, "high": 0.3}, "init": ["kaiming_normal"]},
        "sampler": "qmc",
        "trials_per_arm": points,
        "seeds": 2,
        "epochs": epochs,
        "batch_size": 64,
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": slots},
    }


def run_study(
    spec_path: Path, data_dir: Path, slots: int, source: str | None = None
) -> tuple[float, str, float, float]:
    """``(wall s, study id, start ms, end ms)`` of ``hprobust run`` in a fresh process (of the
    project in ``source``, an unpacked checkout, when given: e.g. the commit before a change)."""
    import os

    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    cli = [sys.executable, "-c", "from study.cli import app; app()"]
    command = [*cli, "run", str(spec_path), "--data-dir", str(data_dir)]
    command += ["--num-cpus", str(slots)]
    start_ms = time.time() * 1e3
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=spec_path.parent,
    )
    cpu = CpuWatch(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    cpu.stop()
    if proc.returncode != 0:
        sys.exit(f"hprobust run failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    study_id = re.search(r"study (s\d{8}-\d{6}-[0-9a-f]{6})", stdout).group(1)
    CPU[study_id] = cpu.by_kind()
    return wall, study_id, start_ms, time.time() * 1e3


#: study id -> CPU seconds of its ``hprobust run`` by process kind (:class:`CpuWatch`).
CPU: dict[str, dict[str, float]] = {}


class CpuWatch:
    """The CPU seconds (user + system) of a process and of every process under it, sampled
    every 0.2 s until :meth:`stop` (a process's last 0.2 s may be missed), by kind: the
    driver (the process itself), Ray's workers (trial actors and idle workers), Ray's GCS
    and raylet, and Ray's other helpers (dashboard, agents, log monitor)."""

    def __init__(self, pid: int) -> None:
        import threading

        import psutil

        self.root = psutil.Process(pid)
        self.seen: dict[int, tuple[str, float]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _kind(self, proc) -> str:
        if proc.pid == self.root.pid:
            return "driver"
        line = " ".join(proc.cmdline())
        if "default_worker.py" in line:
            return "Ray workers"
        if "gcs_server" in line or "raylet" in line:
            return "Ray GCS + raylet"
        return "Ray helpers"

    def _watch(self) -> None:
        import psutil

        while not self._done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    kind = self.seen.get(proc.pid, (None, 0.0))[0] or self._kind(proc)
                    self.seen[proc.pid] = (kind, times.user + times.system)
                except psutil.Error:
                    continue
            self._done.wait(0.2)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def by_kind(self) -> dict[str, float]:
        kinds: dict[str, float] = {}
        for kind, seconds in self.seen.values():
            kinds[kind] = kinds.get(kind, 0.0) + seconds
        return kinds


def run_bare(configs_path: Path, slots: int) -> float:
    """Wall time of ``slots`` processes, each a loop over its share of the configs."""
    loop = (
        "import json, sys\n"
        "from study.train.trial import train_trial\n"
        f"configs = json.load(open({str(configs_path)!r}))\n"
        "for c in configs[int(sys.argv[1])::int(sys.argv[2])]: train_trial(c)\n"
    )
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", loop, str(i), str(slots)],
            stderr=subprocess.PIPE,
            cwd=configs_path.parent,
        )
        for i in range(slots)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"bare loop failed:\n{err.decode()[-3000:]}")
    return time.perf_counter() - start


def study_split(
    data_dir: Path, study_id: str, start_ms: float, end_ms: float, slots: int
) -> tuple[tuple[float, float, float], tuple[float, float]]:
    """``((start-up, trials' span, finalization) s, (mean MLflow run s, occupancy))`` of a
    study run; occupancy: the share of the trials' span x ``slots`` that trials' runs fill
    (1 - occupancy: the slots idle between one trial's run and the next's)."""
    from study.records.store import StudyStore, sqlite_uri

    runs = StudyStore(sqlite_uri(data_dir)).trial_runs(study_id)
    first = min(r.info.start_time for r in runs)
    last = max(r.info.end_time for r in runs)
    lengths = [r.info.end_time - r.info.start_time for r in runs]
    occupancy = sum(lengths) / (slots * (last - first))
    split = ((first - start_ms) / 1e3, (last - first) / 1e3, (end_ms - last) / 1e3)
    return split, (statistics.mean(lengths) / 1e3, occupancy)


def describe(split: tuple[float, float, float], inside: tuple[float, float]) -> str:
    return (
        f"start-up {split[0]:.2f} s | trials {split[1]:.2f} s | finalization {split[2]:.2f} s; "
        f"a trial's MLflow run lasts {inside[0]:.2f} s, runs fill {inside[1]:.1%} of the slots"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="at least this many")
    parser.add_argument("--seconds", type=float, default=1.0, help="training per trial")
    parser.add_argument("--slots", type=int, default=2, help="trials at once")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the study with the project unpacked in DIR (git archive REV | tar -x -C "
        "DIR): before/after side by side, in the order baseline, study, bare, bare, study, "
        "baseline",
    )
    parser.add_argument("--trial-nice", type=int, default=0, help="HPROBUST_TRIAL_NICE")
    args = parser.parse_args()
    # The trials at the bare loops' priority (HPROBUST_TRIAL_NICE=0 unless --trial-nice):
    # niced trials yield to the bare loop and to anything else on a shared machine, and the
    # ratio would measure the priority, not the study's bookkeeping. (Niceness for the whole
    # benchmark instead starved Ray's start-up on a loaded machine until it timed out.)
    import os

    os.environ["HPROBUST_TRIAL_NICE"] = str(args.trial_nice)
    points = max(1, math.ceil(args.trials / 4))  # 2 arms x 2 seeds
    with tempfile.TemporaryDirectory(prefix="hpr-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        datasets = tmp / "datasets"
        epochs, per_epoch = calibrate(args.seconds, datasets)
        spec_path = tmp / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec(points, epochs, args.slots)))
        n = 4 * points
        print(
            f"sweep: {n} trials of digits/mlp x {epochs} epochs (~{epochs * per_epoch:.2f} s "
            f"each, calibrated), {args.slots} at once; ABBA: study, bare, bare, study",
            flush=True,
        )

        from study.records.store import StudyStore, sqlite_uri
        from study.spec.study_spec import StudySpec

        studies, bares, splits, baselines, base_splits = [], [], [], [], []
        own_cpu: list[dict[str, float]] = []  # this checkout's runs' CPU by process kind
        configs_path = tmp / "configs.json"
        order = ("study", "bare", "bare", "study")
        if args.baseline:
            order = ("baseline", *order, "baseline")
        for round_, kind in enumerate(order):
            if kind == "baseline":
                base_dir = tmp / f"base{round_}"
                wall, study_id, start_ms, end_ms = run_study(
                    spec_path, base_dir, args.slots, args.baseline
                )
                baselines.append(wall)
                split, inside = study_split(base_dir, study_id, start_ms, end_ms, args.slots)
                base_splits.append(split)
                print(f"  baseline run: {wall:8.2f} s ({describe(split, inside)})", flush=True)
                continue
            if kind == "bare":
                bares.append(run_bare(configs_path, args.slots))
                print(f"  bare loop over {args.slots} slots: {bares[-1]:8.2f} s", flush=True)
                continue
            data_dir = tmp / f"store{round_}"
            wall, study_id, start_ms, end_ms = run_study(spec_path, data_dir, args.slots)
            studies.append(wall)
            store = StudyStore(sqlite_uri(data_dir))
            split, inside = study_split(data_dir, study_id, start_ms, end_ms, args.slots)
            splits.append(split)
            print(f"  hprobust run: {wall:8.2f} s ({describe(split, inside)})", flush=True)
            cpu = CPU[study_id]
            own_cpu.append(cpu)
            print(
                "    CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items())),
                flush=True,
            )
            if not configs_path.exists():
                study_spec = StudySpec.model_validate(store.get(study_id).spec)
                configs = [
                    study_spec.trial_config(
                        row["arm"], lr=row["lr"], init=row["init"], init_scale=row["init_scale"],
                        seed=row["seed"], data_dir=str(datasets), num_threads=1,
                    ).model_dump(mode="json")
                    for row in store.trials(study_id)
                ]  # fmt: skip
                configs_path.write_text(json.dumps(configs))

    study, bare = statistics.mean(studies), statistics.mean(bares)
    startup, span, final = (statistics.mean(s[i] for s in splits) for i in range(3))
    print(f"\nmeans: hprobust run {study:.2f} s, bare loop over the same slots {bare:.2f} s")
    print(f"  ratio end to end         : {study / bare:6.3f}  (target <= 1.15)")
    print(f"  ratio of the trials' span: {span / bare:6.3f}  (start-up and finalization left out)")
    print(f"  tax per trial            : {(study - bare) * args.slots / n:6.3f} s of a slot")
    print(f"  start-up {startup:.2f} s, finalization {final:.2f} s (means)")
    kinds = sorted({k for cpu in own_cpu for k in cpu} - {"Ray workers"})
    per_trial = {k: 1e3 * statistics.mean(cpu.get(k, 0.0) for cpu in own_cpu) / n for k in kinds}
    print(
        "  CPU per trial besides the trials' workers: "
        + ", ".join(f"{k} {ms:.0f} ms" for k, ms in per_trial.items())
        + f" (on {args.slots} busy slots: {sum(per_trial.values()) / args.slots:.0f} ms of a "
        "slot per trial)"
    )
    print(
        f"  floor with no per-trial tax: (bare + start-up + finalization) / bare = "
        f"{(bare + startup + final) / bare:.3f}"
    )
    if baselines:
        base = statistics.mean(baselines)
        print(
            f"baseline ({args.baseline}) {base:.2f} s: ratio to the bare loop {base / bare:.3f}, "
            f"this checkout / baseline {study / base:.3f}"
        )
        base_span = statistics.mean(s[1] for s in base_splits)
        print(
            f"  trials' span: baseline {base_span:.2f} s ({base_span / bare:.3f} of the bare "
            f"loop), this checkout {span:.2f} s ({span / bare:.3f}); start-up "
            f"{statistics.mean(s[0] for s in base_splits):.2f} s vs {startup:.2f} s, "
            f"finalization {statistics.mean(s[2] for s in base_splits):.2f} s vs {final:.2f} s"
        )


if __name__ == "__main__":
    main()
