"""Load on the read API: 50 concurrent clients for 20 s on GET /studies/{id}/summary and
GET /studies/{id} of a finished study; prints requests/s and p50/p99 latency.

Without ``--url`` it builds its own service: a local Ray head, a tiny digits study run to the
end, then two ``hprobust serve`` processes over the same MLflow store, one with the read cache
(the default) and one without (``HPROBUST_READ_CACHE=false``), loaded one after the other so
the ratio is measured side by side. With ``--url`` (and ``--study-id``, default: the newest
finished study) it loads that service only. Target: p99 < 50 ms with the cache.

``--training``: the cached service is loaded twice, idle and while a second study trains on
every core of the Ray head (2 trials of 1 CPU at once), side by side; printed: both p99s and
their ratio. The trials run at ``HPROBUST_TRIAL_NICE`` of this process's environment (default
10); run it once more with ``HPROBUST_TRIAL_NICE=0`` to see what the lower priority buys.
Target: p99 < 50 ms while training.

    .venv/bin/python bench/api_load.py [--clients 50] [--duration 20] [--training]

The load generator runs on the same machine (and cores) as the service.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = {
    "name": "bench",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["kaiming_normal", "xavier_normal"]},
    "trials_per_arm": 4,
    "epochs": 2,
    "batch_size": 64,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


async def load(url: str, study_id: str, *, clients: int, duration: float) -> dict[str, list]:
    """``clients`` concurrent clients (aiohttp: a lighter client than httpx, so more of the
    two cores go to the service), each alternating the two GETs until ``duration`` is up."""
    import aiohttp

    paths = {"summary": f"/studies/{study_id}/summary", "study": f"/studies/{study_id}"}
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        for path in paths.values():  # warm up (fills the cache)
            async with session.get(path) as response:
                response.raise_for_status()
                await response.read()
        stop = time.perf_counter() + duration

        async def worker(i: int) -> None:
            names = list(paths)
            k = i
            while time.perf_counter() < stop:
                name = names[k % 2]
                k += 1
                t0 = time.perf_counter()
                async with session.get(paths[name]) as response:
                    await response.read()
                    status = response.status
                latencies[name].append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"{name}: {status}")

        await asyncio.gather(*(worker(i) for i in range(clients)))
    latencies["errors"] = errors
    return latencies


def report(label: str, result: dict[str, list], duration: float) -> dict[str, float]:
    every = result["summary"] + result["study"]
    stats = {
        "rps": len(every) / duration,
        "p50": statistics.quantiles(every, n=100)[49] * 1000,
        "p99": statistics.quantiles(every, n=100)[98] * 1000,
    }
    print(f"\n{label}")
    print(f"  {'endpoint':<24}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("summary", "study"):
        lat = result[name]
        q = statistics.quantiles(lat, n=100)
        print(
            f"  {'GET /studies/{id}' + ('/summary' if name == 'summary' else ''):<24}"
            f"{len(lat):>10}{len(lat) / duration:>10.0f}{q[49] * 1000:>10.1f}{q[98] * 1000:>10.1f}"
        )
    print(
        f"  {'both':<24}{len(every):>10}{stats['rps']:>10.0f}{stats['p50']:>10.1f}"
        f"{stats['p99']:>10.1f}"
    )
    if result["errors"]:
        print(f"  errors: {len(result['errors'])} (first: {result['errors'][0]})")
    return stats


def newest_finished(url: str, token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    studies = httpx.get(f"{url}/studies", params={"status": "finished"}, headers=headers).json()
    if not studies["data"]:
        raise SystemExit(f"{url} holds no finished study; pass --study-id or omit --url")
    return studies["data"][0]["id"]


#: The study that keeps both cores busy while ``--training`` loads the API: 2 trials at once,
#: each a few seconds of toy_cnn epochs, more of them than a load window lasts.
TRAINING = {
    **SPEC,
    "name": "bench-training",
    "model": {"name": "toy_cnn"},
    "trials_per_arm": 8,
    "epochs": 40,
}


def while_training(
    url: str, study_id: str, clients: int, duration: float, data_dir: Path | None = None
) -> None:
    """Load ``url`` idle, then while a study trains on every core; print both and the ratio.
    With ``data_dir`` (the service's, embedded: its MLflow store), also how long the training
    study took from its POST to its first trial's start (the service was warm: it had run a
    study already)."""
    idle = report(
        "idle (no study running)",
        asyncio.run(load(url, study_id, clients=clients, duration=duration)),
        duration,
    )
    posted_ms = time.time() * 1e3
    training_id = httpx.post(f"{url}/studies", json=TRAINING, timeout=60).json()["id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # both trials started: every core is busy
        state = httpx.get(f"{url}/studies/{training_id}", timeout=30).json()
        if state["status"] == "running" and state["progress"]["running"] >= 2:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"study {training_id} never ran 2 trials at once")
    if data_dir is not None:
        from study.records.store import StudyStore, sqlite_uri

        runs = StudyStore(sqlite_uri(data_dir)).trial_runs(training_id)
        first = min(r.info.start_time for r in runs)
        print(f"\nPOST -> first trial start (warm service): {(first - posted_ms) / 1e3:.2f} s")
    busy = report(
        f"while study {training_id} trains on every core",
        asyncio.run(load(url, study_id, clients=clients, duration=duration)),
        duration,
    )
    after = httpx.get(f"{url}/studies/{training_id}", timeout=30).json()
    httpx.post(f"{url}/studies/{training_id}/cancel", timeout=30)
    from study.runtime import trial_nice

    print(
        f"\ntrials at niceness {trial_nice()}: p99 {busy['p99']:.1f} ms while training vs "
        f"{idle['p99']:.1f} ms idle ({busy['p99'] / idle['p99']:.2f}x), requests/s "
        f"{busy['rps'] / idle['rps']:.2f}x; {after['progress']['running']} trials running at "
        f"the end; target p99 < 50 ms: {'met' if busy['p99'] < 50 else 'NOT met'}"
    )


def own_services(clients: int, duration: float, training: bool = False) -> None:
    import os
    import subprocess

    from service.stack import free_port, start_ray_head, stop_group

    work = Path(tempfile.mkdtemp(prefix="hprobust-bench-"))
    head = start_ray_head(num_cpus=2, log_dir=work / "logs")
    procs: list[subprocess.Popen] = []

    def serve(cache: bool) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPROBUST_")}
        if "HPROBUST_WARM_DRIVER_S" in os.environ:  # e.g. 0: the service without a warm driver
            env["HPROBUST_WARM_DRIVER_S"] = os.environ["HPROBUST_WARM_DRIVER_S"]
        env.update(
            HPROBUST_RAY_ADDRESS=head.url,
            HPROBUST_RAY_AUTH_TOKEN=head.extra["token"],
            HPROBUST_POLL_INTERVAL_S="2",
            HPROBUST_READ_CACHE=str(cache).lower(),
        )
        log = open(work / f"serve-{port}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "hprobust"),
                    "serve",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(work / "data"),
                    "--no-mlflow-ui",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"hprobust serve did not start (log: {work})")

    try:
        cached = serve(True)
        study_id = httpx.post(f"{cached}/studies", json=SPEC, timeout=60).json()["id"]
        print(f"running study {study_id} (16 trials) ...", flush=True)
        while (s := httpx.get(f"{cached}/studies/{study_id}").json())["status"] not in (
            "finished",
            "failed",
            "cancelled",
        ):
            time.sleep(1)
        assert s["status"] == "finished", s
        if training:
            print(f"load: {clients} clients x {duration:.0f} s, idle and while training")
            while_training(cached, study_id, clients, duration, work / "data")
            return
        uncached = serve(False)
        print(f"load: {clients} clients x {duration:.0f} s on a finished study of 16 trials")
        with_cache = report(
            "with the read cache (default)",
            asyncio.run(load(cached, study_id, clients=clients, duration=duration)),
            duration,
        )
        without = report(
            "without it (HPROBUST_READ_CACHE=false: every request reads MLflow)",
            asyncio.run(load(uncached, study_id, clients=clients, duration=duration)),
            duration,
        )
        print(
            f"\ncache / no cache: {with_cache['rps'] / without['rps']:.1f}x requests/s, "
            f"p99 {without['p99'] / with_cache['p99']:.1f}x lower "
            f"({with_cache['p99']:.1f} ms vs {without['p99']:.1f} ms); "
            f"target p99 < 50 ms: {'met' if with_cache['p99'] < 50 else 'NOT met'}"
        )
    finally:
        for proc in procs:
            stop_group(proc.pid, grace_s=10)
        head.stop(grace_s=15)
        shutil.rmtree(head.extra["temp_dir"], ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running service (else one is started)")
    parser.add_argument("--study-id", help="with --url: the study (default: newest finished)")
    parser.add_argument("--token", help="bearer token, if the service protects reads")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument(
        "--training", action="store_true", help="load it idle and while a study trains"
    )
    args = parser.parse_args()
    import signal

    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the Ray head and the services this
    # benchmark started are stopped by its finally blocks, not left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.url and args.training:
        study_id = args.study_id or newest_finished(args.url, args.token)
        while_training(args.url, study_id, args.clients, args.duration)
    elif args.url:
        study_id = args.study_id or newest_finished(args.url, args.token)
        result = asyncio.run(load(args.url, study_id, clients=args.clients, duration=args.duration))
        stats = report(
            f"{args.url}: {args.clients} clients x {args.duration:.0f} s", result, args.duration
        )
        print(f"target p99 < 50 ms: {'met' if stats['p99'] < 50 else 'NOT met'}")
    else:
        own_services(args.clients, args.duration, args.training)


if __name__ == "__main__":
    main()
