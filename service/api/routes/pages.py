"""The service's HTML pages: the index of studies at ``/``, and the API docs (Swagger UI at
``/docs``, ReDoc at ``/redoc``) served from the ``fastapi-offline`` package's own copies of
their scripts, so that they work with no outside network (FastAPI's defaults load them from a
CDN)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from service.api.deps import ReadTokenDep, ServiceDep, SuiteServiceDep
from service.pages import render_index

router = APIRouter(include_in_schema=False)

#: The files /docs and /redoc load, as shipped in the fastapi-offline wheel.
DOC_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
ASSETS_PATH = "/assets/docs"
INDEX_LIMIT = 200


@router.get("/", response_class=HTMLResponse)
def index(_: ReadTokenDep, service: ServiceDep, suites: SuiteServiceDep) -> HTMLResponse:
    """Every suite (with its progress over its studies) and every study, newest first:
    status, a progress bar, links to its report, its runs in MLflow and its trials as CSV. It
    refreshes itself while a study is queued or running."""
    studies, total = service.listed(limit=INDEX_LIMIT)
    listed_suites, _ = suites.listed(limit=INDEX_LIMIT)
    return HTMLResponse(render_index(studies, total=total, suites=listed_suites))


#: ReDoc's sidebar shows a logo from its CDN (and hides it when it fails to load): served
#: without that URL, the docs make no request off this service at all.
_OUTSIDE = {"redoc.standalone.js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"")}


@lru_cache(maxsize=len(DOC_ASSETS))
def _asset(name: str) -> bytes:
    data = (resources.files("fastapi_offline") / "static" / name).read_bytes()
    if name in _OUTSIDE:
        data = data.replace(*_OUTSIDE[name])
    return data


@router.get(ASSETS_PATH + "/{name}")
def doc_asset(name: str) -> Response:
    if name not in DOC_ASSETS:
        raise HTTPException(404, detail=f"no docs asset {name!r}")
    return Response(
        _asset(name),
        media_type=DOC_ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} · API docs",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} · API reference",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )
