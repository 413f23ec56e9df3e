"""Write .env from .env.example, filling generated secrets, unless .env already exists.

Writes: the .env file (mode 0600). Never overwrites an existing file.
Secrets generated: APP_SECRET_KEY, DEMO_AGENT_PASSWORD (only where the example leaves them empty).
With --production: APP_ENV=production, the DATABASE_URL and REDIS_URL given, RUN_WORKER=false
(workers run as their own processes), LOG_FORMAT=json, a generated HEALTH_TOKEN, and no demo
password (seed_demo is refused in production).

usage: python -m execution.init_env [--example PATH] [--target PATH]
       python -m execution.init_env --production --database-url postgresql://wa:PW@127.0.0.1/wa --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from execution.lib import cli
from execution.lib.config import PROJECT_ROOT
from execution.lib.security import generate_secret

GENERATED = {"APP_SECRET_KEY": 48, "DEMO_AGENT_PASSWORD": 12}


@dataclass(frozen=True)
class EnvFileResult:
    path: str
    written: bool
    generated: list[str]


def init_env(*, example: Path, target: Path, production: dict[str, str] | None = None) -> EnvFileResult:
    """`production`: the values a production .env sets (DATABASE_URL, REDIS_URL, ...)."""
    if target.exists():
        return EnvFileResult(str(target), False, [])
    wanted = dict(GENERATED) if production is None else {"APP_SECRET_KEY": 48, "HEALTH_TOKEN": 32}
    lines, generated = [], []
    for line in example.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        name = key.strip()
        if sep and not line.lstrip().startswith("#"):
            if production is not None and name in production:
                line = f"{name}={production[name]}"
            elif name in wanted and not value.strip():
                line = f"{name}={generate_secret(wanted[name])}"
                generated.append(name)
        lines.append(line)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return EnvFileResult(str(target), True, generated)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--example", type=Path, default=PROJECT_ROOT / ".env.example")
    p.add_argument("--target", type=Path, default=PROJECT_ROOT / ".env")
    p.add_argument("--production", action="store_true", help="a production .env (needs both URLs)")
    p.add_argument("--database-url", help="PostgreSQL DSN (with --production)")
    p.add_argument("--redis-url", help="Redis URL (with --production)")
    args = p.parse_args(argv)
    if not args.example.is_file():
        print(json.dumps({"error": "NotFound", "message": f"{args.example} does not exist"}))
        return 4
    production = None
    if args.production:
        if not (args.database_url and args.redis_url):
            p.error("--production needs --database-url and --redis-url (production never starts embedded servers)")
        production = {"APP_ENV": "production", "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                      "RUN_WORKER": "false", "LOG_FORMAT": "json", "HOST": "127.0.0.1", "DEMO_AGENT_PASSWORD": "",
                      "SIMULATOR": "false"}
    print(json.dumps(cli.jsonable(init_env(example=args.example, target=args.target, production=production)),
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
