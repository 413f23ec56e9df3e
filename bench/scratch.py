"""A migrated scratch database for a benchmark: BENCH_DATABASE_URL's server, or an embedded one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit


def scratch_database(tmp: Path) -> tuple[str, Callable[[], None]]:
    """Create and migrate a database of its own; returns its DSN and the function that drops it."""
    from execution.lib.db import connect
    from execution.migrate import migrate

    admin = os.environ.get("BENCH_DATABASE_URL")
    server = None
    if not admin:
        import pgserver

        server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
        admin = server.get_uri(database="postgres")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    c = connect(admin)
    with c.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    c.close()
    dsn = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    c = connect(dsn)
    migrate(c)
    c.close()

    def cleanup() -> None:
        a = connect(admin)
        with a.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        a.close()
        if server is not None:
            server.cleanup()

    return dsn, cleanup
