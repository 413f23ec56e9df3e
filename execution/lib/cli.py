"""The shared skin of every command: settings, logging, resources, JSON output, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from execution.lib.config import load_settings
from execution.lib.errors import AppError
from execution.lib.resources import Resources, open_resources

log = logging.getLogger(__name__)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser whose --help is the command's module docstring."""
    text = (doc or "").strip()
    first, _, rest = text.partition("\n")
    return argparse.ArgumentParser(
        description=first, epilog=rest.strip() or None, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The embedded server's own start-up chatter is not ours to show at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Path, Decimal)):
        return str(value)
    return value


def run_command(
    work: Callable[[Resources], Any],
    *,
    db: bool = True,
    redis: bool = False,
    resources: Resources | None = None,
) -> int:
    """Load settings, open what `work` needs, print its result as JSON, map errors to exit codes.

    `work` may return an object with an `exit_code` attribute to choose a non-zero code
    for an expected, reported outcome (for example "directives invalid").
    """
    owned = resources is None
    try:
        if owned:
            settings = load_settings()
            configure_logging(settings.log_level)
            resources = open_resources(settings, db=db, redis=redis)
        assert resources is not None
        try:
            result = work(resources)
        finally:
            if owned:
                resources.close()
    except AppError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}, ensure_ascii=False), file=sys.stderr)
        return exc.exit_code
    if result is not None:
        print(json.dumps(jsonable(result), ensure_ascii=False, indent=2))
    return int(getattr(result, "exit_code", 0) or 0)
