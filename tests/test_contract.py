"""Every command keeps the spine: docstring, main(argv), a working --help; imports do nothing."""

import ast
import importlib
import os
import re
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
def test_help_works(name, capsys):
    module = importlib.import_module(f"execution.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    first_line = ast.get_docstring(ast.parse((ROOT / "execution" / f"{name}.py").read_text())).splitlines()[0]
    assert first_line in capsys.readouterr().out


def test_one_command_runs_as_python_m():
    r = subprocess.run([sys.executable, "-m", "execution.validate_directives", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr


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


_SKIP = {".git", ".venv", "data", "__pycache__", ".pytest_cache", ".hypothesis"}


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


# ------------------------------------------------------------------ directives ↔ code

def _sources(*, skip=("lib/directive_schemas.py", "lib/directive_checks.py", "lib/directives.py")) -> dict[str, str]:
    files = {str(p.relative_to(ROOT / "execution")): p.read_text(encoding="utf-8")
             for p in (ROOT / "execution").rglob("*.py")}
    return {k: v for k, v in files.items() if k not in skip}


def test_each_governed_command_exists_and_reads_its_directive():
    from execution.lib.directives import load_directives

    for directive in load_directives().directives.values():
        for command in directive.governs:
            path = ROOT / "execution" / f"{command}.py"
            assert path.is_file(), f"{directive.path}: governs {command!r}, which is not a command"
            assert f'"{directive.id}"' in path.read_text(encoding="utf-8"), (
                f"{directive.path}: governs {command!r}, which never reads {directive.id!r}")


def test_every_directive_key_is_read_by_code():
    from execution.lib.directives import load_directives

    code = "\n".join(_sources().values())
    unread = [f"{d.path}: {key}" for d in load_directives().directives.values() for key in d.values
              if f'"{key}"' not in code]
    assert unread == []


# ------------------------------------------------------------------ one owner per concept

def test_only_the_mode_commands_change_a_mode():
    users = sorted(name for name, text in _sources(skip=()).items() if "apply_mode_change" in text)
    assert users == ["lib/modes.py", "set_mode_ai.py", "set_mode_human.py"]


def test_no_code_outside_providers_knows_a_chat_id_format_or_branches_on_a_provider():
    names = set(re.findall(r'^NAME = "([a-z_]+)"', "\n".join(
        p.read_text() for p in (ROOT / "execution" / "lib" / "providers").glob("*.py")), re.M))
    assert {"green_api", "meta_cloud", "sandbox"} <= names
    problems = []
    for path in [*(ROOT / "execution").rglob("*.py"), ROOT / "main.py"]:
        rel = str(path.relative_to(ROOT))
        if "/providers/" in rel:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(
            n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and re.search(r"@(c|g)\.us\b", node.value):
                problems.append(f"{rel}:{node.lineno}: chat id format {node.value!r}")
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    values = [side] + (list(side.elts) if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [])
                    for v in values:
                        if isinstance(v, ast.Constant) and v.value in names:
                            problems.append(f"{rel}:{node.lineno}: branches on provider {v.value!r}")
    assert problems == []


def test_no_import_cycles_between_commands_and_plumbing():
    """lib/ never imports a command; no two commands import each other."""
    imports = {}
    for path in (ROOT / "execution").rglob("*.py"):
        mod = "execution." + ".".join(path.relative_to(ROOT / "execution").with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports[mod] = {m for m in found if m.startswith("execution.")}
    lib_to_command = [(m, i) for m, deps in imports.items() if m.startswith("execution.lib")
                      for i in deps if not i.startswith("execution.lib")]
    assert lib_to_command == []
    mutual = sorted({tuple(sorted((a, b))) for a, deps in imports.items() for b in deps
                     if a in imports.get(b, set())})
    assert mutual == []


@pytest.mark.parametrize("name", COMMANDS)
def test_commands_stay_small(name):
    lines = len((ROOT / "execution" / f"{name}.py").read_text().splitlines())
    assert lines <= 230, f"{name}.py has {lines} lines: split a decider or plumbing out"
