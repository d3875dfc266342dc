"""The API router: every route module under one router."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import health, pages, studies, suites

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(studies.router)
api_router.include_router(suites.router)
api_router.include_router(pages.router)
