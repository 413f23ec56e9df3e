"""Write .env from .env.example, filling generated secrets, unless .env already exists.

Writes: the .env file (mode 0600). Never overwrites an existing file.
Secrets generated: APP_SECRET_KEY, DEMO_AGENT_PASSWORD (only where the example leaves them empty).

usage: python -m execution.init_env [--example PATH] [--target PATH]
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


def init_env(*, example: Path, target: Path) -> EnvFileResult:
    if target.exists():
        return EnvFileResult(str(target), False, [])
    lines, generated = [], []
    for line in example.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and key.strip() in GENERATED and not value.strip():
            line = f"{key}={generate_secret(GENERATED[key.strip()])}"
            generated.append(key.strip())
        lines.append(line)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return EnvFileResult(str(target), True, generated)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--example", type=Path, default=PROJECT_ROOT / ".env.example")
    p.add_argument("--target", type=Path, default=PROJECT_ROOT / ".env")
    args = p.parse_args(argv)
    if not args.example.is_file():
        print(json.dumps({"error": "NotFound", "message": f"{args.example} does not exist"}))
        return 4
    print(json.dumps(cli.jsonable(init_env(example=args.example, target=args.target)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
