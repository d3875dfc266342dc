"""FastAPI dependencies (``Annotated`` aliases) shared by the routes.

They are ``async`` because none of them blocks: a sync dependency would cost a thread-pool
hop on every request.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from service.core.config import Settings
from service.jobs import StudyJobs
from service.reads import StudyReader
from service.scheduler import Scheduler
from service.studies import StudyService


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Any:
    return request.app.state.store


async def get_reader(request: Request) -> StudyReader:
    return request.app.state.reader


async def get_jobs(request: Request) -> StudyJobs:
    return request.app.state.jobs


async def get_scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler


async def get_service(request: Request) -> StudyService:
    """The service layer over this app's store, reader, scheduler and settings."""
    state = request.app.state
    return StudyService(
        settings=state.settings, store=state.store, reader=state.reader, scheduler=state.scheduler
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Any, Depends(get_store)]
ReaderDep = Annotated[StudyReader, Depends(get_reader)]
JobsDep = Annotated[StudyJobs, Depends(get_jobs)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]
ServiceDep = Annotated[StudyService, Depends(get_service)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def check_token(settings: Settings, authorization: str | None) -> None:
    """Raise 401 unless ``authorization`` is ``Bearer <api_token>`` (constant-time compare)."""
    if settings.api_token is None:
        return
    if not authorization:
        raise _unauthorized("this request needs 'Authorization: Bearer <token>'")
    scheme, _, given = authorization.partition(" ")
    expected = settings.api_token.get_secret_value()
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise _unauthorized("invalid bearer token")


async def require_token(request: Request, settings: SettingsDep) -> None:
    """Mutating routes: the bearer token, when one is configured."""
    check_token(settings, request.headers.get("authorization"))


async def require_read_token(request: Request, settings: SettingsDep) -> None:
    """Read routes: the bearer token only when ``protect_reads`` is set."""
    if settings.protect_reads:
        check_token(settings, request.headers.get("authorization"))


TokenDep = Annotated[None, Depends(require_token)]
ReadTokenDep = Annotated[None, Depends(require_read_token)]
