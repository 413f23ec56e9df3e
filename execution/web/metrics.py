"""Prometheus figures (`GET /metrics`) read from PostgreSQL at scrape time; in production, with the HEALTH_TOKEN."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from execution.check_backlog import check_backlog
from execution.check_health import may_see_details
from execution.lib.errors import NotFound, Unauthorized
from execution.lib.metrics import metrics_registry
from execution.web.deps import ResourcesDep

router = APIRouter()


def require_scraper(request: Request, res: ResourcesDep) -> None:
    """Open outside production; in production, `Authorization: Bearer <HEALTH_TOKEN>` (constant time)."""
    settings = res.settings
    if not settings.is_production:
        return
    if not settings.health_token:
        raise NotFound("/metrics is off in production until HEALTH_TOKEN is set")
    if not may_see_details(request.headers.get("authorization"), health_token=settings.health_token, production=True):
        raise Unauthorized("/metrics needs Authorization: Bearer <HEALTH_TOKEN>")


# Left out of the API document, like /docs: it is for a Prometheus server, not an API client.
@router.get("/metrics", include_in_schema=False, dependencies=[Depends(require_scraper)])
def metrics(res: ResourcesDep) -> Response:
    body = generate_latest(metrics_registry(res.db, backlog=check_backlog))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
