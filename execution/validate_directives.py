"""Check every directive: front matter present, YAML without duplicate keys, the schema of its id.

Reads: a directives folder (README.md excepted) and, with --root, the live one to compare. Writes nothing.
Exit codes: 0 all valid; 1 one or more problems, each printed as file, field and reason (lines are
the file's own).

The safe edit loop: copy the live folder, edit the copy, validate the copy (`--root`), then save it
over the live files. With --root, the report also lists what differs from the live folder and warns
about a changed file whose `version` was not raised. `--watch` re-validates whenever a file changes
and prints one JSON line per change (what was applied, or why it would be refused), as a running
app would see it; Ctrl-C stops it.

usage: python -m execution.validate_directives [--root DIR] [--watch [--interval 1]]
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from execution.lib import cli
from execution.lib.directives import DirectivesInvalid, Snapshot, changes, directives_root, load_directives


def validate_directives(root: Path | None = None, *, live: Path | None = None) -> dict:
    """{"valid", "directives": {id: version}, "hashes", "problems": [{file, field, reason}], ...}.

    With `live` (another folder than `root`): "differences" from it and "warnings" for a changed
    directive whose version was not raised.
    """
    try:
        snapshot = load_directives(root)
    except DirectivesInvalid as exc:
        return {"valid": False, "directives": {}, "hashes": {}, "problems": [cli.jsonable(p) for p in exc.problems]}
    report = {"valid": True, "directives": snapshot.versions(), "hashes": snapshot.hashes(), "problems": []}
    if live is not None:
        try:
            current = load_directives(live)
        except DirectivesInvalid:
            current = None
        report["differences"] = changes(current, snapshot)
        report["warnings"] = [f"{c['id']}: changed without raising its version (still {c['version']})"
                              for c in report["differences"] if not c["version_raised"]]
    return report


def _fingerprint(root: Path) -> tuple:
    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*.md")))


def watch(root: Path, *, interval_s: float = 1.0, out=sys.stdout, rounds: int | None = None) -> None:
    """Print the starting state, then one JSON line per change of the folder."""
    previous: Snapshot | None = None
    stamp = None
    while rounds is None or rounds > 0:
        now = _fingerprint(root)
        if now != stamp:
            stamp = now
            at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            try:
                snapshot = load_directives(root)
            except DirectivesInvalid as exc:
                line = {"at": at, "valid": False, "outcome": "refused: the previous version would stay in force",
                        "problems": [cli.jsonable(p) for p in exc.problems]}
            else:
                changed = changes(previous, snapshot)
                line = {"at": at, "valid": True, "outcome": "applied" if previous else "loaded",
                        "changed": changed if previous else [], "versions": snapshot.versions()}
                line["warnings"] = [f"{c['id']}: changed without raising its version" for c in changed
                                    if previous and not c["version_raised"]]
                previous = snapshot
            print(json.dumps(line, ensure_ascii=False), file=out, flush=True)
        if rounds is not None:
            rounds -= 1
            if rounds == 0:
                break
        time.sleep(interval_s)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--root", type=Path, default=None,
                   help="the folder to check (a copy being edited); default: the live one (DIRECTIVES_DIR or ./directives)")
    p.add_argument("--watch", action="store_true", help="re-check on every change, one JSON line each")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between looks for --watch")
    args = p.parse_args(argv)
    root = args.root or directives_root()
    if args.watch:
        try:
            watch(root, interval_s=args.interval)
        except KeyboardInterrupt:
            pass
        return 0
    live = directives_root()
    report = validate_directives(root, live=live if root.resolve() != live.resolve() else None)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    for problem in report["problems"]:
        print(f"{problem['file']}: {problem['field']}: {problem['reason']}", file=sys.stderr)
    for warning in report.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
