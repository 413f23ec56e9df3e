"""The web app: health, webhooks and the inbox, each route calling an execution function.

Run with `./quickstart.sh` (development) or `uvicorn main:app` (see SETUP.md).
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from execution.answer_due import Responder
from execution.reconcile_outbox import OutboxDispatcher
from execution.check_health import check_health, directive_health, may_see_details
from execution.lib import message_store, tenant_store
from execution.lib.cli import configure_logging, jsonable
from execution.lib.config import load_settings
from execution.lib.directives import DirectiveStore
from execution.lib.errors import AppError, BadRequest, NotFound
from execution.lib.intake import IntakeWriter
from execution.lib.providers import ProviderRegistry
from execution.lib.providers.base import MAX_BODY_BYTES, WebhookRequest
from execution.lib.resources import Resources, open_resources
from execution.lib.security import sandbox_webhook_token
from execution.migrate import require_migrated
from execution.webhook_handler import WebhookReceiver, store_events
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
            app.state.directives = store = directives or DirectiveStore()
            worker = responder = dispatcher = None
            if res.settings.run_worker if run_worker is None else run_worker:
                worker = Worker(res.db, directives=store).start()
                providers = ProviderRegistry(secret_key=res.settings.secret_key)
                responder = Responder(res.db, res.redis, providers, directives=store,
                                      pool_size=res.settings.reply_workers).start()
                dispatcher = OutboxDispatcher(res.db, res.redis, providers, directives=store,
                                              pool_size=res.settings.reply_workers).start()
            app.state.responder = responder
            intake = IntakeWriter(res.db, store_events, on_stored=worker.wake if worker else None).start()
            app.state.receiver = WebhookReceiver(res.db, secret_key=res.settings.secret_key, intake=intake)
            # Objects made at start-up live for the whole process: keep them out of every GC pass.
            gc.freeze()
            log.info("ready: env=%s database=%s redis=%s worker=%s", res.settings.app_env, res.database_kind,
                     res.redis_kind, "in-process" if worker else "external")
            try:
                yield
            finally:
                app.state.receiver.intake.stop()
                for loop in (responder, dispatcher, worker):
                    if loop is not None:
                        loop.stop()
        finally:
            if owned:
                res.close()

    # The API docs are served by the routes below, which know APP_ENV (read at start-up, not here).
    app = FastAPI(title="WhatsApp assistant for real-estate agents", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health(request: Request, res: ResourcesDep) -> JSONResponse:
        report = check_health(res.db, res.redis, database_kind=res.database_kind, redis_kind=res.redis_kind,
                              directives=directive_health(request.app.state.directives))
        if not may_see_details(request.headers.get("authorization"), health_token=res.settings.health_token,
                               production=res.settings.is_production):
            report = report.without_details()
        return JSONResponse(jsonable(report), status_code=report.http_status)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(_require_docs)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(_require_docs)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(_require_docs)])
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    @app.post("/webhooks/{route}")
    async def webhook(route: str, request: Request) -> JSONResponse:
        body = await _read_capped(request, MAX_BODY_BYTES)
        receipt = await request.app.state.receiver.receive_async(route, _webhook_request(request, body))
        return JSONResponse(receipt.as_json())

    @app.get("/webhooks/{route}")
    def webhook_handshake(route: str, request: Request) -> Response:
        return PlainTextResponse(request.app.state.receiver.handshake(route, _webhook_request(request)))

    @app.get("/simulator", include_in_schema=False, dependencies=[Depends(_require_simulator)])
    def simulator() -> Response:
        return HTMLResponse(SIMULATOR_PAGE.read_text(encoding="utf-8"))

    @app.get("/simulator/api/agents", include_in_schema=False, dependencies=[Depends(_require_simulator)])
    def simulator_agents(res: ResourcesDep) -> JSONResponse:
        with res.db.connection() as conn:
            channels = tenant_store.sandbox_channels(conn)
        # Sandbox tokens authorize only sandbox channels, which never send anywhere real.
        return JSONResponse([{**c, "token": sandbox_webhook_token(res.settings.secret_key, c["instance_id"])}
                             for c in channels])

    @app.get("/simulator/api/messages", include_in_schema=False, dependencies=[Depends(_require_simulator)])
    def simulator_messages(res: ResourcesDep, channel_id: int, chat_id: str, after_id: int = 0) -> JSONResponse:
        if "\x00" in chat_id or len(chat_id) > 200:
            raise BadRequest("chat_id is not a chat id")
        with res.db.connection() as conn:
            timeline = message_store.sandbox_chat_timeline(conn, channel_id=channel_id, chat_id=chat_id,
                                                           after_id=after_id)
        return JSONResponse(jsonable(timeline))

    @app.exception_handler(AppError)
    def refuse_with_reason(request: Request, exc: AppError) -> JSONResponse:
        return _refuse(exc.http_status, str(exc))

    return app


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def _webhook_request(request: Request, body: bytes = b"") -> WebhookRequest:
    return WebhookRequest(request.method, {k.lower(): v for k, v in request.headers.items()},
                          dict(request.query_params), body)


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"body is {declared} bytes; the limit is {limit}", too_large=True)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body is over the limit of {limit} bytes", too_large=True)
        chunks.append(chunk)
    return b"".join(chunks)


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def _require_docs(res: ResourcesDep) -> None:
    """Refuse (404 with the reason) in production: the docs map every route for whoever asks."""
    if res.settings.is_production:
        raise NotFound("the API docs are off in production")


def _require_simulator(request: Request, res: ResourcesDep) -> None:
    """Refuse (404 with the reason) unless the simulator is on."""
    # It shows conversations without a login: never in production; unset, it is on only while no
    # real (non-sandbox) channel is connected, so a deployment that forgot APP_ENV is not exposed.
    if res.settings.is_production:
        raise NotFound("the simulator is off in production")
    if res.settings.simulator is False:
        raise NotFound("the simulator is off (SIMULATOR=false)")
    if res.settings.simulator is None and request.app.state.receiver.channels.real_channel_exists():
        raise NotFound("the simulator is off: a real channel is connected here (SIMULATOR=true turns it on)")


app = create_app()
