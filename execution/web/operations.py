"""Health for load balancers and operators, and the API docs outside production."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from execution.check_health import check_health, directive_health, may_see_details
from execution.lib.cli import jsonable
from execution.lib.errors import NotFound
from execution.web.deps import ResourcesDep

router = APIRouter()


def require_docs(res: ResourcesDep) -> None:
    """Refuse (404 with the reason) in production: the docs map every route for whoever asks."""
    if res.settings.is_production:
        raise NotFound("the API docs are off in production")


@router.get("/health", tags=["operations"])
def health(request: Request, res: ResourcesDep) -> JSONResponse:
    report = check_health(res.db, res.redis, database_kind=res.database_kind, redis_kind=res.redis_kind,
                          directives=directive_health(request.app.state.directives),
                          migration_files=getattr(request.app.state, "migration_files", None))
    if not may_see_details(request.headers.get("authorization"), health_token=res.settings.health_token,
                           production=res.settings.is_production):
        report = report.without_details()
    return JSONResponse(jsonable(report), status_code=report.http_status)


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_docs)])
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[Depends(require_docs)])
def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")


@router.get("/redoc", include_in_schema=False, dependencies=[Depends(require_docs)])
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
