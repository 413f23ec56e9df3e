"""The shared skin of every command: settings, logging, resources, JSON output, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Callable

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


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The least a library logs at, whatever LOG_LEVEL says. The embedded server's start-up chatter is not
# ours to show; the model SDKs log each request's options at DEBUG: the prompt and the customer's words.
# (urllib3's request lines carry a Green API URL's token: providers/green_api.py redacts those.)
QUIET_LOGGERS = {"pgserver": logging.WARNING, "anthropic": logging.INFO, "openai": logging.INFO}
# Attributes every LogRecord has; whatever else a record carries came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the `extra=` fields,
    and for an exception its type and where it was raised (never its text or a traceback: those can
    carry a customer's words or a URL with a token)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                entry["exception_at"] = f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        return json.dumps(jsonable(entry), default=lambda v: type(v).__name__)


def configure_logging(level: str = "INFO", log_format: str = "text", *, stream: IO[str] | None = None) -> None:
    """Log to stderr (or `stream`) at `level`, as text lines or (log_format "json") JSON lines.

    Like logging.basicConfig, it leaves a root logger that already has handlers as it is.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    threshold = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=threshold, handlers=[handler])
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(threshold, floor))


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
            configure_logging(settings.log_level, settings.log_format)
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
