"""The web app: health, webhooks and the inbox, each route calling an execution function.

Run with `./quickstart.sh` (development) or `uvicorn main:app` (see SETUP.md).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from execution.check_health import check_health
from execution.lib.cli import configure_logging, jsonable
from execution.lib.config import load_settings
from execution.lib.resources import Resources, open_resources
from execution.migrate import require_migrated

log = logging.getLogger("main")


def create_app(resources: Resources | None = None) -> FastAPI:
    """Build the app; tests pass their own resources, production builds them at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = resources is None
        if owned:
            settings = load_settings()
            configure_logging(settings.log_level)
            res = open_resources(settings)
        else:
            res = resources
        try:
            with res.db.connection() as conn:
                require_migrated(conn)
            app.state.resources = res
            log.info("ready: env=%s database=%s redis=%s", res.settings.app_env, res.database_kind, res.redis_kind)
            yield
        finally:
            if owned:
                res.close()

    app = FastAPI(title="WhatsApp assistant for real-estate agents", lifespan=lifespan)

    @app.get("/health")
    def health(res: ResourcesDep) -> JSONResponse:
        report = check_health(res.db, res.redis, database_kind=res.database_kind, redis_kind=res.redis_kind)
        return JSONResponse(jsonable(report), status_code=200 if report.ok else 503)

    return app


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]

app = create_app()
