"""The web app: assembles the routes (execution/web/, one module per resource) and the background loops.

Run with `./quickstart.sh` (development) or `uvicorn main:app` (see SETUP.md).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from execution.answer_due import Responder
from execution.lib.cli import configure_logging
from execution.lib.config import load_settings
from execution.lib.directives import DirectiveStore
from execution.lib.errors import AppError, TooManyAttempts
from execution.lib.intake import IntakeWriter
from execution.lib import meaning, ops_store
from execution.lib.llm import backend_from_settings
from execution.lib.providers import ProviderRegistry
from execution.lib.resources import Resources, open_resources
from execution.job_handlers import job_handlers
from execution.lib.job_runner import JobRunner
from execution.migrate import read_migration_files, require_migrated
from execution.reconcile_outbox import OutboxDispatcher
from execution.web import (auth, conversations, events, listings, metrics, operations, pages, simulator, viewings,
                           webhooks)
from execution.webhook_handler import WebhookReceiver, store_events
from execution.worker import Worker

log = logging.getLogger("main")


def create_app(
    resources: Resources | None = None, *, run_worker: bool | None = None, directives: DirectiveStore | None = None
) -> FastAPI:
    """Build the app; tests pass their own resources (and directives), production builds them at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        owned = resources is None
        if owned:
            settings = load_settings()
            configure_logging(settings.log_level, settings.log_format)
            res = open_resources(settings)
        else:
            res = resources
        try:
            # The schema is judged against the files this process starts with, now and in /health: a
            # file added on disk under a running process is for its next start (SETUP.md, upgrades).
            app.state.migration_files = files = read_migration_files()
            with res.db.connection() as conn:
                require_migrated(conn, files=files)
            app.state.resources = res
            # A broken directive set stops start-up here, naming file, field and reason.
            app.state.directives = store = directives or DirectiveStore(
                on_change=ops_store.directive_recorder(res.db, actor=f"web:{socket.gethostname()}:{os.getpid()}"))
            app.state.providers = providers = ProviderRegistry(secret_key=res.settings.secret_key)
            worker = responder = dispatcher = jobs = None
            if res.settings.run_worker if run_worker is None else run_worker:
                # The escalation examples' encoder loads once here, not on the first customer's reply.
                meaning.warm(store.current()["escalation_triggers"])
                worker = Worker(res.db, directives=store).start()
                responder = Responder(res.db, res.redis, providers, directives=store,
                                      pool_size=res.settings.reply_workers,
                                      model=backend_from_settings(res.settings)).start()
                dispatcher = OutboxDispatcher(res.db, res.redis, providers, directives=store,
                                              pool_size=res.settings.reply_workers).start()
                jobs = JobRunner(res.db, job_handlers(res.db, res.redis, providers, store)).start()
            app.state.responder = responder
            intake = IntakeWriter(res.db, store_events, on_stored=worker.wake if worker else None).start()
            app.state.receiver = WebhookReceiver(res.db, secret_key=res.settings.secret_key, intake=intake)
            app.state.events = hub = events.EventHub(res.db).start()
            # Objects made at start-up live for the whole process: keep them out of every GC pass.
            gc.freeze()
            log.info("ready: env=%s database=%s redis=%s worker=%s replies=%s", res.settings.app_env,
                     res.database_kind, res.redis_kind, "in-process" if worker else "external",
                     responder.model.name if responder and responder.model else "offline" if responder else "external")
            try:
                yield
            finally:
                hub.stop()
                app.state.receiver.intake.stop()
                for loop in (responder, dispatcher, worker, jobs):
                    if loop is not None:
                        loop.stop()
        finally:
            if owned:
                res.close()

    # The API docs are served by operations' routes, which know APP_ENV (read at start-up, not here).
    app = FastAPI(title="WhatsApp assistant for real-estate agents", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    # Webhooks first: they are most of the requests, and routes are matched in order.
    for module in (webhooks, operations, metrics, auth, conversations, listings, viewings, events, simulator, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC, check_dir=False), name="static")
    app.state.simulator_on = lambda: simulator.simulator_on(_Request(app))

    @app.exception_handler(RequestValidationError)
    def refuse_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why only: echoing the input back could fail (bytes that are not UTF-8) or leak it.
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"ok": False, "error": "; ".join(problems)[:500] or "invalid request"}, status_code=422)

    @app.exception_handler(AppError)
    def refuse_with_reason(request: Request, exc: AppError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyAttempts) else None
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=exc.http_status, headers=headers)

    return app


class _Request:
    """Enough of a request for simulator_on() outside one (it reads only app.state)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app


app = create_app()
