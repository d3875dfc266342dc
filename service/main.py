"""The FastAPI application: ``create_app(settings)``.

Run it with ``hprobust serve`` (which also starts a local Ray head and the MLflow UI), or
against an existing cluster with ``HPROBUST_RAY_ADDRESS``/``HPROBUST_MLFLOW_URI`` set::

    uvicorn --factory service.main:app_from_env

Those two are the API process's entry points, and the only places that configure the process
(:func:`configure_api_process`); :func:`create_app` and the factories below leave the
environment alone, so tests and embedders can call them in a process of their own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import study
from service.api.limits import BodyLimitMiddleware
from service.api.main import api_router
from service.api.origin import RequestOriginMiddleware
from service.core.config import Settings
from service.errors import install_error_handlers
from service.jobs import StudyJobs, resolve_ray_token
from service.reads import StudyReader
from service.scheduler import Scheduler, dependency_faults
from study.errors import ConfigError

log = logging.getLogger("hprobust.service")

DESCRIPTION = """\
Hyperparameter-robustness studies: POST a study spec, follow it, read its summary.

**Auth**: when `HPROBUST_API_TOKEN` is set, every mutating request (POST) needs
`Authorization: Bearer <token>`; reads are open unless `HPROBUST_PROTECT_READS=true`.
The service refuses to bind a non-loopback address without a token.

**Bodies**: `POST /studies` takes the spec as JSON, or as YAML with
`Content-Type: application/yaml` (`curl --data-binary @examples/digits-quick.yaml`).
"""


#: The API process's MLflow client: an API answers in seconds, so it fails fast (a 503) rather
#: than retry an MLflow server for minutes as MLflow's defaults would. MLflow reads these from
#: the environment only; a value already there (the operator's) wins.
API_MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def configure_api_process(environ: MutableMapping[str, str] = os.environ) -> None:
    """Give the API process its MLflow client settings (:data:`API_MLFLOW_ENV`).

    Called where the API process starts, and nowhere else: :func:`app_from_env` (uvicorn) and
    ``hprobust serve`` (:func:`service.launcher.serve`, after it started its Ray head and MLflow
    UI, so the study drivers on that head keep MLflow's patient defaults).
    """
    for key, value in API_MLFLOW_ENV.items():
        environ.setdefault(key, value)


def make_store(settings: Settings) -> Any:
    """The :class:`~study.records.store.StudyStore` of ``settings`` (creating the data dir)."""
    from study.records.store import StudyStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return StudyStore(settings.tracking_uri, secret=settings.signing_secret())


def make_jobs(settings: Settings) -> StudyJobs:
    """The Ray Jobs client of ``settings``; ``ray_address`` must be set."""
    if not settings.ray_address:
        raise ConfigError(
            "ray_address must be set (HPROBUST_RAY_ADDRESS, the Ray dashboard URL such as "
            "http://127.0.0.1:8265), got None: `hprobust serve` starts a local head and sets it"
        )
    token = settings.ray_auth_token.get_secret_value() if settings.ray_auth_token else None
    return StudyJobs(
        settings.ray_address,
        token=resolve_ray_token(token),
        tracking_uri=settings.driver_tracking_uri,
        storage=settings.tune_storage,
        data_dir=settings.datasets_dir,
        python=settings.python,
        resource_wait_s=settings.resource_wait_s,
        env=settings.driver_env(),
    )


def create_app(
    settings: Settings | None = None,
    *,
    store: Any = None,
    jobs: StudyJobs | None = None,
    run_scheduler: bool = True,
    stack: Any = None,
) -> FastAPI:
    """The API. ``store``/``jobs`` default to a StudyStore and a Ray Jobs client from settings.

    ``stack``: the :class:`~service.stack.Supervisor` of ``hprobust serve``'s embedded stack,
    whose ``health()`` ``/readyz`` adds. The lifespan starts the scheduler loop (see
    :mod:`service.scheduler`): it follows and resumes the studies MLflow holds as queued or
    running and submits queued ones.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store if store is not None else make_store(settings)
        app.state.jobs = jobs if jobs is not None else make_jobs(settings)
        app.state.reader = StudyReader(
            app.state.store, ttl_s=settings.cache_ttl_s, enabled=settings.read_cache
        )
        app.state.scheduler = Scheduler(
            app.state.store,
            app.state.jobs,
            max_concurrent=settings.max_concurrent_studies,
            poll_interval_s=settings.poll_interval_s,
            max_attempts=settings.max_attempts,
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
            on_change=app.state.reader.invalidate,
            check=lambda: dependency_faults(settings),
            submit_tries=settings.submit_tries,
            fault_give_up_s=settings.fault_give_up_s,
            creating_grace_s=settings.creating_grace_s,
            standby_s=settings.warm_driver_s,
        )
        if run_scheduler:
            app.state.scheduler.start()
        try:
            yield
        finally:
            app.state.scheduler.stop()

    app = FastAPI(
        title="hprobust",
        version=study.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: service/api/routes/pages.py, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.stack = stack  # the embedded stack's Supervisor (hprobust serve), for /readyz
    app.include_router(api_router)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # outermost: a request from elsewhere is refused before anything reads it (issue 21, B3)
    app.add_middleware(RequestOriginMiddleware, allowed_hosts=settings.served_hosts())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from study.spec.study_spec import StudySpec

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        spec_schema = StudySpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec_schema.pop("$defs", {}))
        components["StudySpec"] = spec_schema
        from service.schemas import SuiteCreate

        components["SuiteCreate"] = SuiteCreate.model_json_schema()
        # Every 422 this service sends has the Problems shape (see service/errors.py).
        problems = {
            "description": "A field breaks a rule: each problem names the field, the rule and "
            "the value.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problems"}}},
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "422" in operation.get("responses", {}):
                    operation["responses"]["422"] = problems
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """``uvicorn --factory service.main:app_from_env``: the API alone, its settings from the
    ``HPROBUST_*`` environment, the process configured first (:func:`configure_api_process`;
    MLflow's and Ray's switches: :func:`study.runtime.configure_process`, as ``hprobust``
    sets them for ``hprobust serve``)."""
    from study.runtime import configure_process

    configure_process()
    configure_api_process()
    return create_app(Settings())
