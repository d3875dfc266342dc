"""POST -> first trial start on a warm service, with and without a warm driver, side by side.

Starts one Ray head and two ``hprobust serve`` processes on it, each over its own data dir:
one keeps a warm driver (``HPROBUST_WARM_DRIVER_S``, the default), the other does not
(``HPROBUST_WARM_DRIVER_S=0``: every study's driver starts as a new Ray job). Each runs one
study first (a warm service), then, alternately (ABBA...), ``--rounds`` small digits studies
are posted one at a time; for each, the time from its POST to its first trial's start (the
trial's MLflow run) and to its end. Prints every time, the medians and their ratio.
Target (issue 24): under 3 s with the warm driver.

    .venv/bin/python bench/first_trial.py [--rounds 4] [--settle-s 10]

``--settle-s``: the pause after each study ends, in which a warm service puts up its next warm
driver (both services get the same pause).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = {
    "name": "first-trial",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["kaiming_normal"]},
    "trials_per_arm": 1,
    "seeds": 1,
    "epochs": 1,
    "batch_size": 64,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 1},
}


def serve(work: Path, name: str, head, warm: bool, procs: list) -> tuple[str, Path]:
    from service.stack import free_port

    port = free_port()
    data = work / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPROBUST_")}
    env.update(
        HPROBUST_RAY_ADDRESS=head.url,
        HPROBUST_RAY_AUTH_TOKEN=head.extra["token"],
        HPROBUST_POLL_INTERVAL_S="2",
    )
    if not warm:
        env["HPROBUST_WARM_DRIVER_S"] = "0"
    log = open(work / f"serve-{name}.log", "wb")  # noqa: SIM115
    command = [str(Path(sys.executable).parent / "hprobust"), "serve", "--port", str(port)]
    command += ["--data-dir", str(data), "--no-mlflow-ui"]
    procs.append(
        subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url, data
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"hprobust serve did not start (log: {work})")


def one_study(url: str, data: Path) -> tuple[float, float]:
    """POST a study, wait for its end; seconds from the POST to its first trial's start and
    to its end."""
    from study.records.store import StudyStore, sqlite_uri

    posted = time.time()
    study_id = httpx.post(f"{url}/studies", json=SPEC, timeout=60).json()["id"]
    deadline = time.monotonic() + 600
    while (state := httpx.get(f"{url}/studies/{study_id}", timeout=30).json())["status"] not in (
        "finished",
        "failed",
        "cancelled",
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"study {study_id} did not end in 600 s")
        time.sleep(0.2)
    ended = time.time()
    if state["status"] != "finished":
        raise SystemExit(f"study {study_id} ended {state['status']}: {state.get('error')}")
    runs = StudyStore(sqlite_uri(data)).trial_runs(study_id)
    first = min(run.info.start_time for run in runs) / 1e3
    return first - posted, ended - posted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="studies per side (default 4)")
    parser.add_argument("--settle-s", type=float, default=10.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from service.stack import start_ray_head, stop_group

    work = Path(tempfile.mkdtemp(prefix="hprobust-bench-"))
    head = start_ray_head(num_cpus=2, log_dir=work / "logs")
    procs: list[subprocess.Popen] = []
    times: dict[str, list[tuple[float, float]]] = {"warm driver": [], "no warm driver": []}
    try:
        sides = {
            "warm driver": serve(work, "warm", head, True, procs),
            "no warm driver": serve(work, "cold", head, False, procs),
        }
        for name, (url, data) in sides.items():  # each service runs a study first: warm
            print(f"{name}: a first study (warming the service) ...", flush=True)
            one_study(url, data)
            time.sleep(args.settle_s)
        names = list(sides)
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]  # ABBA
            for name in order:
                first, end = one_study(*sides[name])
                times[name].append((first, end))
                print(f"{name}: POST -> first trial {first:.2f} s, -> finished {end:.2f} s")
                time.sleep(args.settle_s)
        print()
        medians = {}
        for name, rows in times.items():
            medians[name] = statistics.median(first for first, _ in rows)
            end = statistics.median(end for _, end in rows)
            print(f"{name}: median POST -> first trial {medians[name]:.2f} s, -> end {end:.2f} s")
        warm, cold = medians["warm driver"], medians["no warm driver"]
        print(
            f"\nwarm / no warm driver: {warm / cold:.2f}x; target < 3 s with the warm driver: "
            f"{'met' if warm < 3 else 'NOT met'}"
        )
    finally:
        for proc in procs:
            stop_group(proc.pid, grace_s=20)
        head.stop(grace_s=15)
        shutil.rmtree(head.extra["temp_dir"], ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
