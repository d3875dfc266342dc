"""``/healthz`` (the process is alive) and ``/readyz`` (what studies need answers: Ray, MLflow,
free space in the data dir, and the MLflow UI that ``hprobust serve`` runs).

``/readyz`` asks Ray as the scheduler does before it pauses studies for it
(:meth:`service.jobs.StudyJobs.ping`), so the two agree: Ray reachable, ``ray: ok`` and a
study that cannot start says why in its own ``last_error``; Ray down, both say so. Under
``hprobust serve`` the embedded stack's view is added: a Ray head or MLflow UI it is
restarting is reported down (with what it does about it) whatever a probe found."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.deps import JobsDep, SettingsDep, StoreDep
from service.scheduler import dependency_faults
from service.schemas import Health, Readiness
from study.vocab import Dependency

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Something studies need is down: Ray or MLflow unreachable, the data "
            "dir's disk full, or the embedded MLflow UI down (each key says which).",
        }
    },
    summary="Ray's Jobs API and MLflow answer, the data dir has room, the MLflow UI is up",
)
def readyz(request: Request, store: StoreDep, jobs: JobsDep, settings: SettingsDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        jobs.ping()
        checks[Dependency.RAY] = "ok"
    except Exception as exc:
        checks[Dependency.RAY] = f"unreachable at {jobs.address}: {type(exc).__name__}: {exc}"[:500]
    try:
        store.ping()
        checks[Dependency.MLFLOW] = "ok"
    except Exception as exc:
        checks[Dependency.MLFLOW] = f"unreachable: {type(exc).__name__}: {exc}"[:500]
    checks[Dependency.DISK] = dependency_faults(settings).get(Dependency.DISK, "ok")
    stack = getattr(request.app.state, "stack", None)  # the embedded stack of `hprobust serve`
    if stack is not None:
        for key, value in stack.health().items():  # its "down" wins; its "ok" hides no failure
            if value != "ok" or key not in checks:
                checks[key] = value
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", **checks)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)
