"""Apply pending SQL migrations from migrations/ in order.

Writes: the schema, and one schema_migrations row (version, name, checksum,
applied_at) per file, each file and its row in one transaction.
Guard: a PostgreSQL advisory lock, so concurrent runs apply each file once.
Refuses to run when an already applied file was edited (checksum changed).

usage: python -m execution.migrate [--list | --dry-run]
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from execution.lib import cli
from execution.lib.config import PROJECT_ROOT
from execution.lib.db import Connection, transaction
from execution.lib.errors import MigrationError, PendingMigrations

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
_ADVISORY_LOCK_ID = 748_201_001  # any constant shared by every migrate run
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class MigrationFile:
    version: str
    name: str
    path: Path
    checksum: str


@dataclass(frozen=True)
class MigrationState:
    version: str
    name: str
    state: str  # applied | pending | changed | missing_file
    applied_at: str | None = None


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str]                 # applied by this run (none on a dry run)
    dry_run: bool
    already_applied: int
    would_apply: list[str] = field(default_factory=list)   # a dry run: what a real run would apply


def read_migration_files(migrations_dir: Path | None = None) -> list[MigrationFile]:
    migrations_dir = MIGRATIONS_DIR if migrations_dir is None else migrations_dir
    files = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_snake_case.sql")
        files.append(
            MigrationFile(
                version=match.group(1),
                name=match.group(2),
                path=path,
                checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
    versions = [f.version for f in files]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return files


def _applied(conn: Connection) -> dict[str, dict]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') AS t")
        if cur.fetchone()["t"] is None:
            return {}
        cur.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        return {row["version"]: row for row in cur.fetchall()}


def migration_status(conn: Connection, *, migrations_dir: Path | None = None,
                     files: list[MigrationFile] | None = None) -> list[MigrationState]:
    """Every known migration with its state; no writes.

    `files`: judge against these (a running process passes the files it started with: a file added
    on disk since is for the next start, and an applied version it does not know is a newer
    release's, which stays backward compatible for one release).
    """
    files = read_migration_files(migrations_dir) if files is None else files
    applied = _applied(conn)
    states = []
    for f in files:
        row = applied.pop(f.version, None)
        if row is None:
            states.append(MigrationState(f.version, f.name, "pending"))
        else:
            state = "applied" if row["checksum"] == f.checksum else "changed"
            states.append(MigrationState(f.version, f.name, state, row["applied_at"].isoformat()))
    for version, row in applied.items():
        states.append(MigrationState(version, row["name"], "missing_file", row["applied_at"].isoformat()))
    return states


def _refuse_changed(states: list[MigrationState]) -> None:
    changed = [f"{s.version}_{s.name}.sql" for s in states if s.state == "changed"]
    if changed:
        raise MigrationError(
            "applied migration edited after it ran (checksum differs): "
            + ", ".join(changed)
            + "; restore the file and add a new migration instead"
        )


def require_migrated(conn: Connection, *, migrations_dir: Path | None = None,
                     files: list[MigrationFile] | None = None) -> None:
    """Raise unless every migration file is applied unchanged (the app's start-up check)."""
    states = migration_status(conn, migrations_dir=migrations_dir, files=files)
    _refuse_changed(states)
    pending = [f"{s.version}_{s.name}" for s in states if s.state == "pending"]
    if pending:
        raise PendingMigrations(
            f"{len(pending)} pending migration(s): {', '.join(pending)}; run `python -m execution.migrate`"
        )


def migrate(conn: Connection, *, migrations_dir: Path | None = None, dry_run: bool = False) -> MigrationResult:
    """Apply every pending file in version order, under the advisory lock."""
    files = read_migration_files(migrations_dir)
    with conn.cursor() as cur:
        # Waiting for another run's lock, and a long migration, are not the runaway queries the
        # connection's statement timeout is for (RESET below restores it).
        cur.execute("SET statement_timeout = 0")
        cur.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
    try:
        _refuse_changed(migration_status(conn, migrations_dir=migrations_dir))
        applied = _applied(conn)
        pending = [f for f in files if f.version not in applied]
        if dry_run:
            return MigrationResult([], True, len(applied), would_apply=[f.path.name for f in pending])
        with conn.cursor() as cur:
            cur.execute(_BOOTSTRAP)
        for f in pending:
            with transaction(conn), conn.cursor() as cur:
                cur.execute(f.path.read_text(encoding="utf-8"))
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (f.version, f.name, f.checksum),
                )
        return MigrationResult([f.path.name for f in pending], False, len(applied))
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
            cur.execute("RESET statement_timeout")


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="show every migration and its state; change nothing")
    mode.add_argument("--dry-run", action="store_true", help="show what would be applied; change nothing")
    args = p.parse_args(argv)

    def work(res):
        with res.db.connection() as conn:
            if args.list:
                return migration_status(conn)
            return migrate(conn, dry_run=args.dry_run)

    return cli.run_command(work, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
