"""FastAPI dependencies (``Annotated`` aliases) shared by the routes.

They are ``async`` because none of them blocks: a sync dependency would cost a thread-pool
hop on every request.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core.config import Settings
from service.jobs import StudyJobs
from service.studies import StudyService
from service.suites import SuiteService


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Any:
    return request.app.state.store


async def get_jobs(request: Request) -> StudyJobs:
    return request.app.state.jobs


async def get_service(request: Request) -> StudyService:
    """The service layer over this app's store, reader, scheduler and settings."""
    state = request.app.state
    return StudyService(
        settings=state.settings, store=state.store, reader=state.reader, scheduler=state.scheduler
    )


async def get_suite_service(request: Request) -> SuiteService:
    """The suites' service layer over the same parts."""
    state = request.app.state
    return SuiteService(
        settings=state.settings, store=state.store, reader=state.reader, scheduler=state.scheduler
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Any, Depends(get_store)]
JobsDep = Annotated[StudyJobs, Depends(get_jobs)]
ServiceDep = Annotated[StudyService, Depends(get_service)]
SuiteServiceDep = Annotated[SuiteService, Depends(get_suite_service)]


#: The bearer token (``HPROBUST_API_TOKEN``) as FastAPI's own scheme: it parses the header
#: and documents the scheme in the OpenAPI schema (Swagger UI's "Authorize"); the answers
#: stay this service's (401 with ``WWW-Authenticate: Bearer`` and a message saying what is
#: wrong), so it does not raise itself.
bearer = HTTPBearer(
    auto_error=False,
    description="HPROBUST_API_TOKEN, when set: every POST needs it; reads need it only with "
    "HPROBUST_PROTECT_READS=true.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _check(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 401 unless ``credentials`` carry the configured token (constant-time compare)."""
    if settings.api_token is None:
        return
    if credentials is None:
        raise _unauthorized("this request needs 'Authorization: Bearer <token>'")
    expected = settings.api_token.get_secret_value()
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise _unauthorized("invalid bearer token")


async def require_token(settings: SettingsDep, credentials: Credentials) -> None:
    """Mutating routes: the bearer token, when one is configured."""
    _check(settings, credentials)


async def require_read_token(request: Request, settings: SettingsDep) -> None:
    """Read routes: the bearer token only when ``protect_reads`` is set (asked of ``bearer``
    directly, not as a dependency: the OpenAPI schema shows reads open, as they are unless
    the deployment protects them)."""
    if settings.protect_reads:
        _check(settings, await bearer(request))


TokenDep = Annotated[None, Depends(require_token)]
ReadTokenDep = Annotated[None, Depends(require_read_token)]
