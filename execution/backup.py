"""Back up the database to a pg_dump file, or restore such a file into a new, empty database.

Reads: the whole database (`pg_dump --format=custom`: schema and data as one consistent snapshot,
while the app keeps running). Writes: the dump file, mode 0600, never over an existing file.
`--restore` writes every table of the target database and refuses one that already has tables
(`pg_restore --no-owner --no-privileges --single-transaction`: all or nothing; the objects belong
to the role that restores). The database is DATABASE_URL's (the embedded one without it), or the
one `--database-url` names (or set DATABASE_URL for this one command, out of the process list).
The password never goes on a command line: pg_dump and pg_restore get it through PGPASSWORD.
Tools: the first of PATH's and the embedded PostgreSQL's at least as new as the server.
Keep `.env`'s APP_SECRET_KEY with every dump: provider tokens are stored encrypted with it.

usage: python -m execution.backup --output /var/backups/wa-assistant/2026-01-31.dump
       python -m execution.backup --restore FILE.dump --database-url postgresql://app@db:5432/assistant_new
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from psycopg2.extensions import make_dsn, parse_dsn

from execution.lib import cli
from execution.lib.db import Database
from execution.lib.errors import AppError, BadRequest, ConfigError
from execution.lib.resources import describe_dsn, open_resources
from execution.migrate import migration_status

REMINDER = ("keep .env's APP_SECRET_KEY with this dump (not in it): provider tokens and app secrets are stored "
            "encrypted with it; without it every number must be registered again (register_channel)")
_TABLE_ENTRY = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )", re.M)    # a `pg_restore --list` line
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


class ToolFailed(AppError):
    exit_code = 70  # EX_SOFTWARE


@dataclass(frozen=True)
class BackupResult:
    file: str
    bytes: int
    tables: int
    seconds: float
    database: str
    reminder: str = REMINDER


@dataclass(frozen=True)
class RestoreResult:
    file: str
    database: str
    tables: int
    seconds: float
    migrations_applied: int
    migrations_pending: list[str]
    reminder: str = REMINDER


def libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The connection string for a child's command line, without the password, and the environment that carries it."""
    params = parse_dsn(dsn)
    password = params.pop("password", None)
    return make_dsn(**params), ({"PGPASSWORD": password} if password else {})


def _candidates(name: str) -> list[str]:
    found = [shutil.which(name)]
    spec = importlib.util.find_spec("pgserver")      # located, not imported: nothing runs
    if spec and spec.submodule_search_locations:
        found.append(str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name))
    return [p for p in found if p and os.access(p, os.X_OK)]


def pg_tool(name: str, *, server_major: int) -> str:
    """The first pg_dump / pg_restore (PATH, then the embedded server's) that is at least the server's version."""
    seen = []
    for path in _candidates(name):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(m.group(1)) if (m := _VERSION.search(out)) else 0
        if major >= server_major:
            return path
        seen.append(f"{path} ({major or 'unknown version'})")
    raise ConfigError(f"{name} {server_major} or newer is needed for this PostgreSQL {server_major} server; found: "
                      f"{', '.join(seen) or 'none'} (Debian: apt-get install postgresql-client-{server_major})")


def _server_major(db: Database) -> int:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version_num')::int / 10000 AS major")
        return cur.fetchone()["major"]


def _tables(db: Database) -> int:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM pg_catalog.pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        return cur.fetchone()["n"]


def _run(cmd: list[str], *, env: dict[str, str], secret: str | None, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True, **kw)
    if done.returncode != 0:
        reason = " ".join((done.stderr or "").split())[-600:]
        raise ToolFailed(f"{Path(cmd[0]).name} failed ({done.returncode}): "
                         f"{reason.replace(secret, '***') if secret else reason}")
    return done


def tables_in(archive: Path, *, pg_restore: str) -> int:
    listing = _run([pg_restore, "--list", str(archive)], env={}, secret=None, stdout=subprocess.PIPE)
    return len(_TABLE_ENTRY.findall(listing.stdout))


def backup(db: Database, *, output: Path) -> BackupResult:
    """Dump the whole database into `output` (0600), written aside first so a failure leaves no file."""
    if output.exists():
        raise BadRequest(f"{output} exists; give a new file name")
    if not output.parent.is_dir():
        raise BadRequest(f"{output.parent} is not a directory")
    major = _server_major(db)
    pg_dump, pg_restore = pg_tool("pg_dump", server_major=major), pg_tool("pg_restore", server_major=major)
    conninfo, env = libpq_target(db.dsn)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    started = time.monotonic()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _run([pg_dump, "--format=custom", "--no-password", f"--dbname={conninfo}"], env=env,
             secret=env.get("PGPASSWORD"), stdout=fd)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        tables = tables_in(partial, pg_restore=pg_restore)
        os.replace(partial, output)
    finally:
        if fd >= 0:
            os.close(fd)
        partial.unlink(missing_ok=True)
    return BackupResult(str(output), output.stat().st_size, tables, round(time.monotonic() - started, 2),
                        describe_dsn(db.dsn))


def restore(db: Database, *, archive: Path) -> RestoreResult:
    """Restore `archive` into the database of `db`, which must have no tables yet."""
    if not archive.is_file():
        raise BadRequest(f"{archive} is not a file")
    existing = _tables(db)
    if existing:
        raise BadRequest(f"{describe_dsn(db.dsn)} already has {existing} table(s): restore into a new, empty "
                         "database (createdb), never over a live one")
    pg_restore = pg_tool("pg_restore", server_major=_server_major(db))
    tables = tables_in(archive, pg_restore=pg_restore)
    conninfo, env = libpq_target(db.dsn)
    started = time.monotonic()
    _run([pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password",
          f"--dbname={conninfo}", str(archive)], env=env, secret=env.get("PGPASSWORD"), stdout=subprocess.DEVNULL)
    seconds = round(time.monotonic() - started, 2)
    with db.connection() as conn:
        states = migration_status(conn)
    return RestoreResult(str(archive), describe_dsn(db.dsn), tables, seconds,
                         sum(s.state == "applied" for s in states),
                         [f"{s.version}_{s.name}" for s in states if s.state == "pending"])


def main(argv: list[str] | None = None, *, resources=None) -> int:
    p = cli.parser(__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--output", type=Path, help="the dump file to write (a new file)")
    mode.add_argument("--restore", type=Path, metavar="FILE", help="a dump to restore into a new, empty database")
    p.add_argument("--database-url", default=None, help="this database instead of DATABASE_URL's")
    args = p.parse_args(argv)

    def act(db: Database):
        if args.output is not None:
            return backup(db, output=args.output.resolve())
        return restore(db, archive=args.restore.resolve())

    def work(res):
        if args.database_url is None and res.db is not None:
            return act(res.db)
        settings = replace(res.settings, database_url=args.database_url or res.settings.database_url)
        target = open_resources(settings, db=True, redis=False)
        try:
            return act(target.db)
        finally:
            target.close()

    return cli.run_command(work, db=False, resources=resources)


if __name__ == "__main__":
    raise SystemExit(main())
