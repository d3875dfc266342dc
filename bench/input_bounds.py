"""How long bounded input takes to refuse a YAML alias bomb (issue 10, defect 1).

A < 1.5 KB spec whose ``schedule`` holds nine levels of nested aliases (9^9 "lol"s once
expanded) was accepted before bounded parsing, and on an unknown key its 422 took 23-37 s.
This prints, for ``--repeat`` rounds:

- ``load_yaml``: the in-process refusal (study.bounded), without HTTP;
- ``POST``: the whole round trip of POST /studies to a real ``hprobust serve`` (a 422), for the
  bomb under ``schedule`` and under an unknown key; then GET /healthz right after.

Without ``--url`` it starts its own ``hprobust serve`` on a temporary data dir, its Ray address
pointing at nothing (the bomb is refused before Ray or MLflow are needed). Target: well under a
second per POST. The client runs on the same machine (and cores) as the service.

    .venv/bin/python bench/input_bounds.py [--repeat 20] [--url URL --token TOKEN]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC_YAML = """\
name: bomb
dataset: digits
model: {name: mlp}
arms:
- {name: sgd, optimizer: sgd, momentum: 0.9}
search:
  lr: {low: 0.01, high: 1.0}
  init: [kaiming_normal]
trials_per_arm: 2
epochs: 2
"""


def alias_bomb(levels: int = 9, key: str = "schedule") -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\n{key}: {{name: multistep, x: *a{levels - 1}}}\n"


def stats(label: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(
        f"{label:<28} n={len(ms):3d}  min {ms[0]:8.2f} ms  median {statistics.median(ms):8.2f} ms"
        f"  max {ms[-1]:8.2f} ms"
    )


def serve(data_dir: Path) -> tuple[subprocess.Popen, str, str]:
    from service.stack import free_ports

    port, nothing = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPROBUST_", "RAY_"))}
    token = secrets.token_urlsafe(24)
    env.update(
        HPROBUST_API_TOKEN=token,
        HPROBUST_RAY_ADDRESS=f"http://127.0.0.1:{nothing}",
        PYTHONUNBUFFERED="1",
    )
    hprobust = str(Path(sys.executable).parent / "hprobust")
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 (kept open for the child)
    proc = subprocess.Popen(
        [hprobust, "serve", "--port", str(port), "--data-dir", str(data_dir), "--no-mlflow-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hprobust serve exited: {(data_dir / 'serve.log').read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, token, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("hprobust serve did not answer in 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--url", help="an existing service (default: start one)")
    parser.add_argument("--token", help="its bearer token")
    args = parser.parse_args()

    from study.bounded import BoundedInputError, load_yaml

    bombs = {key: SPEC_YAML + alias_bomb(key=key) for key in ("schedule", "unknown_key")}
    print(f"bomb: {len(bombs['schedule'].encode())} bytes, 9 levels (9^9 items if expanded)")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        try:
            load_yaml(bombs["schedule"])
        except BoundedInputError:
            pass
        else:
            raise SystemExit("load_yaml accepted the bomb")
        times.append(time.perf_counter() - start)
    stats("load_yaml (in process)", times)

    tmp = None
    proc = None
    url, token = args.url, args.token
    if url is None:
        tmp = Path(tempfile.mkdtemp(prefix="hpr-bench-bounds-"))
        proc, token, url = serve(tmp)
    headers = {"Content-Type": "application/yaml"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for key, body in bombs.items():
                posts, health = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    r = client.post("/studies", content=body.encode(), headers=headers)
                    posts.append(time.perf_counter() - start)
                    if r.status_code != 422 or len(r.content) > 2000:
                        got = f"{r.status_code}: {r.text[:300]}"
                        raise SystemExit(f"expected a short 422, got {got}")
                    start = time.perf_counter()
                    client.get("/healthz").raise_for_status()
                    health.append(time.perf_counter() - start)
                stats(f"POST bomb under {key}", posts)
                stats("  GET /healthz right after", health)
    finally:
        if proc is not None:
            from service.stack import stop_group

            stop_group(proc.pid, grace_s=10)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
