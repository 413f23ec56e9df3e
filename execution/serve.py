"""Serve the web app in production: N processes on one port, exiting non-zero when it cannot start.

Reads: settings, the database (schema migrations), directives/ — the same start-up checks as each
web process, made once first so a bad deploy stops here with a JSON reason on stderr.
Exit codes: 0 after a clean stop (SIGTERM / Ctrl-C), 3 when the app cannot start (settings,
database, pending or edited migrations, invalid directives, or any process failing its start-up),
2 for bad arguments. `uvicorn main:app --workers N` exits 0 in that last case; a service manager
or a deploy script would count the failure as success, hence this command.

`systemctl reload` (SIGHUP) replaces the processes one by one: the way to pick up a new release.

usage: python -m execution.serve [--host 0.0.0.0] [--port 8000] [--workers 2] [--proxy-headers]
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from execution.lib import cli
from execution.lib.config import env_value, load_settings
from execution.lib.directives import load_directives
from execution.lib.errors import AppError
from execution.lib.resources import open_resources
from execution.migrate import require_migrated

log = logging.getLogger(__name__)

STARTUP_WAIT_S = 60


def preflight() -> dict:
    """The web process's own start-up checks, once, in this process; raises AppError with the reason."""
    settings = load_settings()
    cli.configure_logging(settings.log_level, settings.log_format)
    resources = open_resources(settings, db=True, redis=False)
    try:
        with resources.db.connection() as conn:
            require_migrated(conn)
        snapshot = load_directives()
    finally:
        resources.close()
    return {"env": settings.app_env, "database": resources.database_kind, "directives": snapshot.versions(),
            "host": settings.host, "port": settings.port}


class _StopEvent(threading.Event):
    """uvicorn's `should_exit`, which also reads as set once a stop signal has arrived: the supervisor
    queues signals and handles them between its rounds, so without this a SIGTERM that came during a
    reload waited for the reload (up to STARTUP_WAIT_S a process) and the service manager killed it.
    (A flag, not Event.set(): the handler may interrupt the thread inside the event's own lock.)"""

    signalled = False

    def is_set(self) -> bool:
        return self.signalled or super().is_set()


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, but a reload waits up to STARTUP_WAIT_S for each new process to finish its
    start-up (it trains the escalation decider before it serves) before giving up and keeping the old
    one; uvicorn's 5 s aborted reloads on a busy machine. A process that fails its start-up exits and is
    given up at once; the liveness pings of running processes keep uvicorn's 5 s. A SIGTERM or Ctrl-C
    during a reload ends the reload at once (the new process is stopped, the old ones keep serving
    until the supervisor stops them all)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.should_exit = _StopEvent()

        def stop(sig, frame) -> None:
            self.signal_queue.append(sig)
            self.should_exit.signalled = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)

    def restart_all(self) -> None:
        usual = self.config.timeout_worker_healthcheck
        self.config.timeout_worker_healthcheck = max(usual, STARTUP_WAIT_S)
        try:
            super().restart_all()
        finally:
            self.config.timeout_worker_healthcheck = usual


def serve(*, host: str, port: int, workers: int, proxy_headers: bool = False,
          forwarded_allow_ips: str | None = None, app: str = "main:app") -> int:
    config = uvicorn.Config(app, host=host, port=port, workers=workers, proxy_headers=proxy_headers,
                            forwarded_allow_ips=forwarded_allow_ips, timeout_graceful_shutdown=10,
                            # No access log: it would print query strings (an inbox search, Meta's verify token).
                            log_config=None, access_log=False)
    # Always under uvicorn's supervisor, even for one process: SIGHUP then replaces the processes one at a
    # time (a reload without downtime), and a process that dies is replaced.
    supervisor = _Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    # uvicorn stops every process when one fails its start-up, then returns as after a clean stop.
    failed = [p for p in supervisor.processes if p.process.exitcode == STARTUP_FAILURE]
    return STARTUP_FAILURE if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--host", help="address to listen on (default: HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default: PORT)")
    p.add_argument("--workers", type=int, default=None, help="web processes sharing the port (WEB_CONCURRENCY, 1)")
    p.add_argument("--proxy-headers", action="store_true",
                   help="trust X-Forwarded-Proto/For from --forwarded-allow-ips (behind nginx)")
    p.add_argument("--forwarded-allow-ips", default=None, help="proxies whose forwarded headers count")
    args = p.parse_args(argv)
    try:
        args.workers = args.workers or int(env_value("WEB_CONCURRENCY", "1"))
    except ValueError:
        p.error("WEB_CONCURRENCY: a whole number")
    if not 1 <= args.workers <= 64:
        p.error("--workers: 1 to 64")
    try:
        ready = preflight()
    except AppError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}, ensure_ascii=False), file=sys.stderr)
        return STARTUP_FAILURE
    host, port = args.host or ready["host"], args.port or ready["port"]
    log.info("start-up checks passed: env=%s database=%s; starting %d web process(es) on %s:%d",
             ready["env"], ready["database"], args.workers, host, port)
    return serve(host=host, port=port, workers=args.workers, proxy_headers=args.proxy_headers,
                 forwarded_allow_ips=args.forwarded_allow_ips)


if __name__ == "__main__":
    raise SystemExit(main())
