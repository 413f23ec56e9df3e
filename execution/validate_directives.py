"""Check every directive: front matter present, YAML without duplicate keys, the schema of its id.

Reads: directives/**/*.md (README.md excepted). Writes nothing.
Exit codes: 0 all valid; 1 one or more problems, each printed as file, field and reason.

usage: python -m execution.validate_directives [--root DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from execution.lib import cli
from execution.lib.directives import DIRECTIVES_ROOT, DirectivesInvalid, load_directives


def validate_directives(root: Path = DIRECTIVES_ROOT) -> dict:
    """{"valid": bool, "directives": {id: version}, "problems": [{file, field, reason}]}."""
    try:
        snapshot = load_directives(root)
    except DirectivesInvalid as exc:
        return {"valid": False, "directives": {}, "problems": [cli.jsonable(p) for p in exc.problems]}
    return {"valid": True, "directives": snapshot.versions(), "problems": []}


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--root", type=Path, default=DIRECTIVES_ROOT, help="the directives folder")
    args = p.parse_args(argv)
    report = validate_directives(args.root)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    for problem in report["problems"]:
        print(f"{problem['file']}: {problem['field']}: {problem['reason']}", file=sys.stderr)
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
