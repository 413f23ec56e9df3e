"""Every command keeps the spine: docstring, main(argv), a working --help; imports do nothing."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(p.stem for p in (ROOT / "execution").glob("*.py") if p.stem != "__init__")


def test_there_are_commands():
    assert {"migrate", "check_health", "seed_demo", "init_env"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_docstring_and_main(name):
    tree = ast.parse((ROOT / "execution" / f"{name}.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc and "usage:" in doc, f"{name}: module docstring with a usage line"
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert mains and mains[0].args.args and mains[0].args.args[0].arg == "argv"
    guard = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert guard and "SystemExit(main())" in ast.unparse(guard[0])


@pytest.mark.parametrize("name", COMMANDS)
def test_help_works(name):
    r = subprocess.run(
        [sys.executable, "-m", f"execution.{name}", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    first_line = ast.get_docstring(ast.parse((ROOT / "execution" / f"{name}.py").read_text())).splitlines()[0]
    assert first_line in r.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_listed_in_architecture(name):
    assert f"execution.{name}" in (ROOT / "ARCHITECTURE.md").read_text() or f"`{name}`" in (
        ROOT / "ARCHITECTURE.md"
    ).read_text()


_IMPORT_PROBE = r"""
import builtins, importlib, os, pkgutil, socket, sys
events = []
def refuse(*a, **k):
    events.append("socket")
    raise RuntimeError("socket opened at import")
socket.socket.connect = refuse
socket.socket.bind = refuse
real_open = builtins.open
def watched_open(file, mode="r", *a, **k):
    if any(c in mode for c in "wax+"):
        events.append(f"open:{file}")
    return real_open(file, mode, *a, **k)
builtins.open = watched_open
real_os_open = os.open
def watched_os_open(path, flags, *a, **k):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        events.append(f"os.open:{path}")
    return real_os_open(path, flags, *a, **k)
os.open = watched_os_open
import execution
names = ["main"]
for info in pkgutil.walk_packages(execution.__path__, "execution."):
    names.append(info.name)
for name in names:
    importlib.import_module(name)
print(len(names), "modules;", "events:", events)
sys.exit(1 if events else 0)
"""


_SKIP = {".git", ".venv", "data", "__pycache__", ".pytest_cache"}


def _tree():
    return {p for p in ROOT.rglob("*") if not _SKIP.intersection(p.relative_to(ROOT).parts)}


def test_importing_every_module_opens_no_socket_and_writes_no_file(tmp_path):
    before = _tree()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tree() == before
    assert list(tmp_path.iterdir()) == []
