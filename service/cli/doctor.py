"""``hprobust doctor``: a two-trial study through the whole service, part by part.

``hprobust demo`` checks training alone. ``doctor`` asks the running service (found as the
client commands find it: ``--url``, ``HPROBUST_URL``, the URL ``hprobust serve`` recorded)
whether its API answers and what ``/readyz`` says of Ray, MLflow and the disk, then submits
a two-trial study (digits, an MLP of 8 units, 1 epoch, 1 seed; a few seconds of work), follows
it to its end and reads back its trials (recorded in MLflow) and its summary (the API). One
line per part; the first part that fails is named, with why, and the command exits 1.
The study stays listed (name ``doctor``), like any other.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from service.cli.group import app
from study.cli.options import ServiceToken, ServiceUrl

#: The smallest study that goes through every part: two trials of one arm, 1 epoch.
DOCTOR_SPEC: dict[str, Any] = {
    "name": "doctor",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd", "momentum": 0.9}],
    "search": {"lr": {"low": 0.01, "high": 0.1}, "init": ["kaiming_normal"]},
    "sampler": "qmc",
    "trials_per_arm": 2,
    "seeds": 1,
    "epochs": 1,
    "batch_size": 64,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


class PartFailed(Exception):
    def __init__(self, part: str, why: str) -> None:
        super().__init__(f"{part}: {why}")
        self.part, self.why = part, why


@app.command()
def doctor(
    url: ServiceUrl = None,
    token: ServiceToken = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the study to end.")] = 120.0,
) -> None:
    """Check the running service end to end: API, Ray, MLflow, with a two-trial study."""
    import httpx

    from service.cli.remote import message, service_url
    from service.client import ApiError, Client
    from study.cli.options import fail

    base = service_url(url)
    api = Client(base, token=token)
    start = time.monotonic()

    def ok(part: str, text: str) -> None:
        typer.echo(f"{part + ':':<8} ok ({text})")

    try:
        try:
            t0 = time.monotonic()
            api.http.get("/healthz").raise_for_status()
            ok("API", f"{base} answers in {1000 * (time.monotonic() - t0):.0f} ms")
        except httpx.HTTPError as exc:
            raise PartFailed("API", f"cannot reach {base}: {exc}") from None
        ready = api.http.get("/readyz").json()
        for part, key in (("Ray", "ray"), ("MLflow", "mlflow"), ("disk", "disk")):
            if ready.get(key) != "ok":
                raise PartFailed(part, f"the service says {ready.get(key)!r} (GET /readyz)")
        try:
            created = api.submit(DOCTOR_SPEC)
        except ApiError as exc:
            part = "MLflow" if exc.status in (503, 507) else "API"
            raise PartFailed(part, f"the study was refused: {message(exc)}") from None
        study_id = created["id"]
        try:
            state = api.wait(study_id, poll_s=0.5, timeout_s=timeout)
        except TimeoutError:
            state = api.study(study_id)
            why = state.get("paused") or state.get("last_error") or f"still {state['status']}"
            raise PartFailed(
                "Ray", f"study {study_id} did not end in {timeout:.0f} s: {why}"
            ) from None
        if state["status"] != "finished":
            raise PartFailed("Ray", f"study {study_id} ended {state['status']}: {state['error']}")
        ok("Ray", f"study {study_id} ran its 2 trials as a Ray job")
        rows = api.trials(study_id)
        done = [r for r in rows if r["status"] == "finished"]
        if len(done) != 2:
            statuses = ", ".join(r["status"] for r in rows) or "none"
            raise PartFailed("MLflow", f"2 finished trials expected, recorded: {statuses}")
        ok("MLflow", "2 trials recorded with their accuracy")
        summary = api.summary(study_id)
        if summary.get("partial") or "sgd" not in summary.get("arms", {}):
            raise PartFailed("summary", "the finished study's summary is partial or empty")
        ok("summary", f"GET /studies/{study_id}/summary")
    except PartFailed as exc:
        fail(f"{exc.part} failed: {exc.why}", 1)
    except (ApiError, httpx.HTTPError) as exc:
        fail(f"API failed: {exc}", 1)
    finally:
        api.close()
    typer.echo(f"all parts work: {time.monotonic() - start:.1f} s end to end")
