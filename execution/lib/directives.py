"""Directives: Markdown SOPs whose YAML front matter holds every value the code acts on.

`load_directives(root)` parses and validates every file and returns an immutable `Snapshot`, or
raises `DirectivesInvalid` listing each problem as file, field and reason. `DirectiveStore` keeps
the snapshot in force and picks up edits within `reload_interval_s`: a valid edit replaces it, an
invalid one is refused (the previous snapshot stays) and its errors are kept for /health.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import yaml

from execution.lib.config import env_value
from execution.lib.directive_checks import Check
from execution.lib.directive_schemas import SCHEMAS
from execution.lib.errors import AppError

DIRECTIVES_ROOT = Path(__file__).resolve().parents[2] / "directives"

log = logging.getLogger(__name__)


def directives_root() -> Path:
    """The folder in force: DIRECTIVES_DIR when set (SOPs kept outside the checkout), else ./directives."""
    configured = env_value("DIRECTIVES_DIR")
    return Path(configured) if configured else DIRECTIVES_ROOT


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class DirectivesInvalid(AppError):
    exit_code = 1

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:20]))
        self.problems = problems


@dataclass(frozen=True)
class Directive:
    id: str
    version: int
    governs: tuple[str, ...]
    values: Mapping[str, Any]
    body: str
    path: str
    checksum: str

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@dataclass(frozen=True)
class Snapshot:
    directives: Mapping[str, Directive]
    loaded_at: float = field(default_factory=time.time)

    def __getitem__(self, directive_id: str) -> Directive:
        return self.directives[directive_id]

    def versions(self) -> dict[str, int]:
        return {d.id: d.version for d in self.directives.values()}

    def hashes(self) -> dict[str, str]:
        """Each file's content hash: an edit shows here even when its version was not raised."""
        return {d.id: d.checksum for d in self.directives.values()}

    def with_values(self, directive_id: str, **values: Any) -> "Snapshot":
        """A copy with some of one directive's values replaced (tests, and a replay under an edit)."""
        current = self.directives[directive_id]
        changed = replace(current, values=MappingProxyType({**current.values, **_freeze(values)}))
        return Snapshot(MappingProxyType({**self.directives, directive_id: changed}), self.loaded_at)


def localized(texts: Mapping[str, str], language: str, *, gender: str | None = None) -> str:
    """The text for a language, in the female agent's wording where the directive has one."""
    if gender == "female" and f"{language}_female" in texts:
        return texts[f"{language}_female"]
    return texts[language]


# --- YAML that refuses duplicate keys ----------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def split_front_matter(text: str) -> tuple[str, str]:
    """The YAML between the opening and closing `---` lines, and the Markdown after them."""
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", text, re.DOTALL)
    if not match:
        raise ValueError("must start with YAML front matter between two '---' lines")
    return match.group(1), match.group(2)


def _yaml_problem(exc: Exception) -> str:
    """The YAML error at the line of the file (the front matter starts on line 2), on one line."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and mark is not None:
        what = "; ".join(x for x in (exc.context, exc.problem) if x)
        return f"line {mark.line + 2}, column {mark.column + 1}: {what}"
    return str(exc).replace("\n", " ")


def load_directives(root: Path | None = None, *, schemas: Mapping[str, Check] | None = None) -> Snapshot:
    """Parse and validate every directive under `root`; every problem is reported, none is skipped."""
    root = directives_root() if root is None else root
    schemas = SCHEMAS if schemas is None else schemas
    problems: list[Problem] = []
    found: dict[str, Directive] = {}
    for path in sorted(p for p in root.rglob("*.md") if p.name != "README.md"):
        rel = str(path.relative_to(root))
        try:
            raw = path.read_text(encoding="utf-8")
            front, body = split_front_matter(raw)
            values = yaml.load(front, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            problems.append(Problem(rel, "front matter", _yaml_problem(exc)))
            continue
        if not isinstance(values, dict):
            problems.append(Problem(rel, "front matter", "must be a YAML mapping"))
            continue
        directive_id = values.get("id")
        if directive_id != path.stem:
            problems.append(Problem(rel, "id", f"must equal the file name {path.stem!r}, got {directive_id!r}"))
            continue
        schema = schemas.get(directive_id)
        if schema is None:
            problems.append(Problem(rel, "id", f"no schema for {directive_id!r}; see directives/README.md"))
            continue
        problems += [Problem(rel, f, r) for f, r in schema(values, "")]
        if any(p.file == rel for p in problems):
            continue
        found[directive_id] = Directive(
            id=directive_id, version=values["version"], governs=tuple(values["governs"]),
            values=_freeze({k: v for k, v in values.items() if k not in ("id", "version", "governs")}),
            body=body.strip(), path=rel, checksum=hashlib.sha256(raw.encode()).hexdigest()[:16],
        )
    problems += [Problem(f"{i}.md", "file", "is missing") for i in schemas if i not in found
                 and not any(p.file.endswith(f"{i}.md") for p in problems)]
    if problems:
        raise DirectivesInvalid(problems)
    return Snapshot(MappingProxyType(found))


def changes(old: Snapshot | None, new: Snapshot) -> list[dict]:
    """What an edit changed, per directive: id, version, hash, and whether the version was raised."""
    out = []
    for directive_id, d in new.directives.items():
        before = old.directives.get(directive_id) if old is not None else None
        if before is None or before.checksum != d.checksum:
            out.append({"id": directive_id, "version": d.version, "hash": d.checksum,
                        "previous_version": before.version if before else None,
                        "previous_hash": before.checksum if before else None,
                        "version_raised": before is None or d.version > before.version})
    return out


OnChange = Callable[[str, list[dict]], None]   # ("applied", changes) or ("refused", problems)


class DirectiveStore:
    """The snapshot in force, re-read when a file changes (checked at most every reload_interval_s).

    Every apply and refusal is logged (ids, versions, hashes and reasons; never content) and passed to
    `on_change`, which the processes use to write the audit log.
    """

    def __init__(self, root: Path | None = None, *, reload_interval_s: float = 2.0, clock=time.monotonic,
                 on_change: OnChange | None = None):
        self.root = directives_root() if root is None else root
        self.on_change = on_change
        self.reload_interval_s = reload_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot = load_directives(self.root)  # a broken set at start-up stops start-up
        self._stamp = self._fingerprint()
        self._checked = clock()
        self.errors: tuple[str, ...] = ()

    def _fingerprint(self) -> tuple:
        return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in self.root.rglob("*.md")))

    def current(self) -> Snapshot:
        now = self._clock()
        if now - self._checked < self.reload_interval_s:
            return self._snapshot
        with self._lock:
            if now - self._checked >= self.reload_interval_s:
                self._checked = now
                self._maybe_reload()
        return self._snapshot

    def _maybe_reload(self) -> None:
        try:
            stamp = self._fingerprint()
        except OSError as exc:
            self.errors = (f"directives: {exc}",)
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            snapshot = load_directives(self.root)
        except DirectivesInvalid as exc:
            # Refused: the previous snapshot stays in force until the file is fixed.
            errors = tuple(str(p) for p in exc.problems)
            if errors != self.errors:
                self.errors = errors
                for problem in exc.problems:
                    log.error("directive edit refused, previous version stays in force: %s", problem)
                self._tell("refused", [{"file": p.file, "field": p.field, "reason": p.reason}
                                       for p in exc.problems])
            return
        changed = changes(self._snapshot, snapshot)
        self._snapshot, self.errors = snapshot, ()
        for c in changed:
            log.info("directive applied: %s version %s hash %s", c["id"], c["version"], c["hash"])
            if not c["version_raised"]:
                log.warning("directive %s changed without raising its version (still %s): raise it so "
                            "the change can be told apart", c["id"], c["version"])
        if changed:
            self._tell("applied", changed)

    def _tell(self, outcome: str, details: list[dict]) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(outcome, details)
        except Exception:      # noqa: BLE001 - recording the change must never stop the reload
            log.exception("could not record the directive change (%s)", outcome)
