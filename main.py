"""The web app: health, webhooks and the inbox, each route calling an execution function.

Run with `./quickstart.sh` (development) or `uvicorn main:app` (see SETUP.md).
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import psycopg2
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from execution.answer_conversation import Responder
from execution.check_health import check_health, directive_health
from execution.lib import message_store, store
from execution.lib.cli import configure_logging, jsonable
from execution.lib.config import load_settings
from execution.lib.directives import DirectiveStore, default_store, set_default_store
from execution.lib.errors import BadRequest, DatabaseUnavailable, Unauthorized
from execution.lib.resources import Resources, open_resources
from execution.lib.security import sandbox_webhook_token
from execution.migrate import require_migrated
from execution.lib.intake import IntakeWriter
from execution.lib.providers import ProviderRegistry
from execution.webhook_handler import MAX_BODY_BYTES, ChannelDirectory, authorize, parse_green_api, store_events
from execution.worker import Worker

log = logging.getLogger("main")
SIMULATOR_PAGE = Path(__file__).resolve().parent / "templates" / "simulator.html"


def create_app(
    resources: Resources | None = None, *, run_worker: bool | None = None, directives: DirectiveStore | None = None
) -> FastAPI:
    """Build the app; tests pass their own resources (and directives), production builds them at start-up."""

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
            # A broken directive set stops start-up here, naming file, field and reason.
            app.state.directives = directives or default_store()
            previous_directives = set_default_store(app.state.directives)
            app.state.channels = ChannelDirectory(res.db)
            worker = responder = None
            if res.settings.run_worker if run_worker is None else run_worker:
                worker = Worker(res.db).start()
                providers = ProviderRegistry(secret_key=res.settings.secret_key)
                responder = Responder(res.db, res.redis, providers, store_=app.state.directives).start()
            app.state.responder = responder
            intake = IntakeWriter(res.db, store_events, on_stored=worker.wake if worker else None).start()
            app.state.intake = intake
            # Objects made at start-up live for the whole process: keep them out of every GC pass.
            gc.freeze()
            log.info("ready: env=%s database=%s redis=%s worker=%s", res.settings.app_env, res.database_kind,
                     res.redis_kind, "in-process" if worker else "external")
            try:
                yield
            finally:
                intake.stop()
                for loop in (responder, worker):
                    if loop is not None:
                        loop.stop()
                set_default_store(previous_directives)
        finally:
            if owned:
                res.close()

    app = FastAPI(title="WhatsApp assistant for real-estate agents", lifespan=lifespan)

    @app.get("/health")
    def health(request: Request, res: ResourcesDep) -> JSONResponse:
        report = check_health(res.db, res.redis, database_kind=res.database_kind, redis_kind=res.redis_kind,
                              directives=directive_health(request.app.state.directives))
        return JSONResponse(jsonable(report), status_code=200 if report.ok else 503)

    @app.post("/webhooks/green-api")
    async def green_api_webhook(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _refuse(413, f"body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
        body = await _read_capped(request, MAX_BODY_BYTES)
        if body is None:
            return _refuse(413, f"body is over the limit of {MAX_BODY_BYTES} bytes")
        state = request.app.state
        try:
            payload, instance = parse_green_api(body)
            # Only a channel not cached yet costs a query; it runs off the event loop.
            channel = state.channels.cached(instance) or await run_in_threadpool(state.channels.find, instance)
            pending = authorize(channel, payload, request.headers.get("authorization"))
            receipt = await state.intake.submit_async(pending)
        except BadRequest as exc:
            return _refuse(413 if exc.too_large else 400, str(exc))
        except Unauthorized as exc:
            return _refuse(401, str(exc))
        except (DatabaseUnavailable, psycopg2.Error):
            # Never a 200 without a durable write: the provider will deliver again.
            return _refuse(503, "storage unavailable; retry later")
        return JSONResponse({"ok": True, "outcome": receipt.outcome.value, "event_id": receipt.event_id})

    @app.get("/simulator", include_in_schema=False)
    def simulator(res: ResourcesDep) -> Response:
        if res.settings.is_production:
            return _refuse(404, "the simulator is off in production")
        return HTMLResponse(SIMULATOR_PAGE.read_text(encoding="utf-8"))

    @app.get("/simulator/api/agents", include_in_schema=False)
    def simulator_agents(res: ResourcesDep) -> JSONResponse:
        if res.settings.is_production:
            return _refuse(404, "the simulator is off in production")
        with res.db.connection() as conn:
            channels = store.sandbox_channels(conn)
        # Sandbox tokens authorize only sandbox channels, which never send anywhere real.
        return JSONResponse([{**c, "token": sandbox_webhook_token(res.settings.secret_key, c["instance_id"])}
                             for c in channels])

    @app.get("/simulator/api/messages", include_in_schema=False)
    def simulator_messages(res: ResourcesDep, channel_id: int, chat_id: str, after_id: int = 0) -> JSONResponse:
        if res.settings.is_production:
            return _refuse(404, "the simulator is off in production")
        with res.db.connection() as conn:
            return JSONResponse(jsonable(message_store.chat_timeline(conn, channel_id=channel_id, chat_id=chat_id,
                                                                     after_id=after_id)))

    return app


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]

app = create_app()
