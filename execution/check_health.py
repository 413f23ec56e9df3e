"""Report whether the database, Redis, the schema and the directives are ready.

Reads: PostgreSQL (SELECT 1, schema_migrations, the backlog of check_backlog), Redis (PING),
directives/. Writes nothing.
Exit code 0 when all is well, 1 otherwise; `/health` serves the same report. `status` is `ok`,
`degraded` (Redis down: intake and the database keep working, so `/health` still answers 200) or
`down` (the database or the schema: 503). A refused directive edit makes it `degraded`, with the
errors under `directives` (the previous version stays in force, so the service stays up); `ok` is
false whenever the exit code is 1. `/health` shows error details only to a
caller with the HEALTH_TOKEN (or, without one set, outside production).

usage: python -m execution.check_health
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from dataclasses import dataclass, field

import psycopg2
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from execution.check_backlog import Backlog, check_backlog
from execution.lib import cli, ops_store
from execution.lib.db import Database
from execution.lib.directives import DirectivesInvalid, DirectiveStore, load_directives
from execution.lib.errors import AppError
from execution.migrate import migration_status

PING_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ComponentHealth:
    ok: bool
    kind: str
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class MigrationHealth:
    ok: bool
    applied: int = 0
    pending: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class DirectiveHealth:
    ok: bool
    versions: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)   # content hash per SOP: edits show without a version bump


@dataclass(frozen=True)
class Health:
    ok: bool                         # everything ready (kept for callers that read only this)
    database: ComponentHealth
    redis: ComponentHealth
    migrations: MigrationHealth
    directives: DirectiveHealth | None = None
    status: str = "ok"               # ok | degraded (Redis down, a channel failing, a directive edit refused)
    #                                  | down (database or schema)
    reason: str | None = None        # why not ok, in words that carry no error text
    details_hidden: bool = False
    backlog: Backlog | None = None   # waiting work and failing channels (with details only)
    model: dict | None = None        # the model backends' last outcome: status ok | error | unavailable

    @property
    def http_status(self) -> int:
        # Degraded still takes webhooks durably: a load balancer must not pull every process for it.
        return 503 if self.status == "down" else 200

    @property
    def exit_code(self) -> int:
        # At a shell an invalid directive set is a failure: the app would refuse to start with it.
        return 0 if self.ok and (self.directives is None or self.directives.ok) else 1

    def without_details(self) -> "Health":
        """The component states only: no exception text, migration names or directive errors."""
        migrations = MigrationHealth(self.migrations.ok, self.migrations.applied,
                                     error="hidden" if self.migrations.error else None)
        directives = self.directives and DirectiveHealth(self.directives.ok, self.directives.versions,
                                                         hashes=self.directives.hashes)
        return dataclasses.replace(
            self, database=_hide(self.database), redis=_hide(self.redis), migrations=migrations,
            directives=directives, details_hidden=True, backlog=None,
            model=self.model and {"status": self.model["status"]})


def _hide(component: ComponentHealth) -> ComponentHealth:
    return dataclasses.replace(component, error="hidden" if component.error else None)


def may_see_details(authorization: str | None, *, health_token: str | None, production: bool) -> bool:
    """Whether a /health caller sees error details: the HEALTH_TOKEN as a bearer token (constant time)."""
    if not health_token:
        return not production
    scheme, _, presented = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), health_token.encode())


def _status(database: ComponentHealth, redis: ComponentHealth, migrations: MigrationHealth,
            backlog: Backlog | None = None, model: dict | None = None,
            directives: DirectiveHealth | None = None) -> tuple[str, str | None]:
    if not database.ok:
        return "down", "database unavailable"
    if not migrations.ok:
        return "down", "schema not ready: migrations pending or edited"
    if backlog is not None and backlog.unattended:
        return "down", backlog.unattended
    if not redis.ok:
        return "degraded", "redis unavailable: webhooks are still stored; replies wait for it"
    if backlog is not None and backlog.failing_channels:
        return "degraded", (f"{len(backlog.failing_channels)} channel(s) cannot send: their replies are queued and "
                            "retried until the sending directive's horizon")
    if model is not None and model["status"] == "error":
        return "degraded", "the model refuses requests (key, model name or request): the offline responder answers"
    if model is not None and model["status"] == "unavailable":
        return "degraded", "the model is unavailable: the offline responder answers and flags conversations"
    if directives is not None and not directives.ok:
        return "degraded", ("a directive edit was refused: the previous version stays in force until the file is "
                            "fixed (python -m execution.validate_directives says why)")
    return "ok", None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def directive_health(store: DirectiveStore | None) -> DirectiveHealth:
    """The versions in force and any refused edit; without a running store, a fresh validation."""
    if store is not None:
        snapshot = store.current()
        return DirectiveHealth(not store.errors, snapshot.versions(), list(store.errors), snapshot.hashes())
    try:
        snapshot = load_directives()
        return DirectiveHealth(True, snapshot.versions(), hashes=snapshot.hashes())
    except DirectivesInvalid as exc:
        return DirectiveHealth(False, errors=[str(p) for p in exc.problems])


def check_health(
    db: Database | None,
    redis: redis_lib.Redis | None,
    *,
    database_kind: str,
    redis_kind: str,
    directives: DirectiveHealth | None = None,
    migration_files: list | None = None,
) -> Health:
    """`migration_files`: a running process's own (read at its start); None: what is on disk now."""
    migrations = MigrationHealth(ok=False, error="database unavailable")
    backlog = model = None
    if db is None:
        database = ComponentHealth(False, database_kind, error="not configured")
    else:
        started = time.perf_counter()
        try:
            with db.connection() as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                database = ComponentHealth(True, database_kind, round((time.perf_counter() - started) * 1000, 2))
                try:
                    states = migration_status(conn, files=migration_files)
                    pending = [f"{s.version}_{s.name}" for s in states if s.state == "pending"]
                    changed = [f"{s.version}_{s.name}" for s in states if s.state == "changed"]
                    applied = sum(1 for s in states if s.state == "applied")
                    migrations = MigrationHealth(not pending and not changed, applied, pending, changed)
                    if migrations.ok:
                        backlog = check_backlog(conn)
                        model = ops_store.model_status(conn)
                except (AppError, psycopg2.Error) as exc:
                    migrations = MigrationHealth(False, error=_reason(exc))
        except (AppError, psycopg2.Error) as exc:
            database = ComponentHealth(False, database_kind, error=_reason(exc))
    if redis is None:
        redis_health = ComponentHealth(False, redis_kind, error="not configured")
    else:
        started = time.perf_counter()
        try:
            _ping(redis)
            redis_health = ComponentHealth(True, redis_kind, round((time.perf_counter() - started) * 1000, 2))
        except redis_lib.RedisError as exc:
            redis_health = ComponentHealth(False, redis_kind, error=_reason(exc))
    status, reason = _status(database, redis_health, migrations, backlog, model, directives)
    ready = database.ok and redis_health.ok and migrations.ok and (directives is None or directives.ok)
    return Health(ready, database, redis_health, migrations, directives, status, reason, backlog=backlog,
                  model=model)


def _ping(client: redis_lib.Redis) -> None:
    """PING on a fresh connection without retries, within PING_TIMEOUT_S."""
    # The client's own retries take seconds against a dead Redis: a load balancer would time out.
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        client.ping()
        return
    kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0), "socket_timeout": PING_TIMEOUT_S,
              "socket_connect_timeout": PING_TIMEOUT_S}
    probe = redis_lib.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    try:
        redis_lib.Redis(connection_pool=probe).ping()
    finally:
        probe.disconnect()


def main(argv: list[str] | None = None, *, resources=None) -> int:
    cli.parser(__doc__).parse_args(argv)

    def work(res):
        return check_health(res.db, res.redis, database_kind=res.database_kind, redis_kind=res.redis_kind,
                            directives=directive_health(None))

    return cli.run_command(work, redis=True, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
