"""``/healthz`` (the process is alive) and ``/readyz`` (Ray and MLflow answer)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import JobsDep, StoreDep
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Ray or MLflow is not reachable."}},
    summary="Ray's Jobs API and MLflow are reachable",
)
def readyz(store: StoreDep, jobs: JobsDep) -> JSONResponse:
    checks = {}
    try:
        jobs.ping()
        checks["ray"] = "ok"
    except Exception as exc:
        checks["ray"] = f"unreachable at {jobs.address}: {type(exc).__name__}: {exc}"[:500]
    try:
        store.list()
        checks["mlflow"] = "ok"
    except Exception as exc:
        checks["mlflow"] = f"unreachable: {type(exc).__name__}: {exc}"[:500]
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", **checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
