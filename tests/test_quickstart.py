"""`./quickstart.sh` as a new user runs it: serve, Ctrl-C, serve again, also after a SIGKILL.

It runs in a copy of the project so the `.env` it writes never lands in the working tree; the copy's
`.venv` borrows the real one's packages and is marked installed, so nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.test_embedded_servers import PROJECT_ROOT, Stack, alive

pytestmark = pytest.mark.slow


def _project_copy(dst: Path) -> Path:
    """Copy what quickstart serves from, with a private .venv that shares the real site-packages."""
    shutil.copytree(PROJECT_ROOT, dst, ignore=shutil.ignore_patterns(
        ".venv", ".git", "data", ".env", ".pytest_cache", "__pycache__", "*.pyc", "tests", "bench"))
    real = PROJECT_ROOT / ".venv"
    venv = dst / ".venv"
    (venv / "bin").mkdir(parents=True)
    # A venv is its pyvenv.cfg plus an interpreter next to it; lib is where the packages live.
    shutil.copy(real / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(real / "lib")
    (venv / "bin" / "python").symlink_to(os.path.realpath(real / "bin" / "python"))
    # What quickstart's install() writes after installing requirements.txt: this copy counts as installed.
    req = (dst / "requirements.txt").read_bytes()
    (venv / ".install-stamp-requirements").write_text(hashlib.sha256(req + req).hexdigest() + "\n")
    return dst


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[Stack, Path]]:
    stack = Stack(tmp_path)
    try:
        # Beside the data dir, outside pytest's basetemp, for the reason Stack gives: as root the
        # PostgreSQL binaries run as another user, and these ones live in the copy's .venv path.
        yield stack, _project_copy(stack.data_dir.parent / "project")
    finally:
        stack.teardown()


def _ctrl_c(stack: Stack, proc: subprocess.Popen[bytes]) -> None:
    """Press Ctrl-C: SIGINT to the whole foreground process group, as a terminal does."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"quickstart did not stop within 20 s of Ctrl-C:\n{stack.log_of(proc)}")


def test_ctrl_c_stops_the_embedded_servers_and_a_rerun_works_even_after_a_kill(quickstart) -> None:
    stack, project = quickstart
    run = lambda: stack.start_app(["./quickstart.sh"], cwd=project)  # noqa: E731

    first = run()
    stack.wait_healthy(first)
    assert (project / ".env").exists()  # init_env wrote it in the copy, not in the working tree
    _ctrl_c(stack, first)
    assert "Application shutdown complete" in stack.log_of(first)
    assert stack.leftovers() == [], "Ctrl-C on quickstart left embedded servers running"

    second = run()
    stack.wait_healthy(second)
    # A second quickstart while this one serves: a clear refusal naming PORT, not "serving on" then a
    # bind error; the one serving is left alone.
    again = run()
    try:
        again.wait(120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second quickstart did not stop:\n{stack.log_of(again)}")
    assert again.returncode == 1, stack.log_of(again)
    assert "already in use" in stack.log_of(again) and "PORT=" in stack.log_of(again)
    assert "serving on" not in stack.log_of(again)
    stack.wait_healthy(second)
    orphans = alive(stack.seen_server_pids)
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(10)
    assert alive(orphans) == orphans, "a SIGKILL should leave the servers behind for this test to mean anything"

    third = run()
    stack.wait_healthy(third)
    _ctrl_c(stack, third)
    assert stack.leftovers() == [], "servers left running after a rerun that followed a SIGKILL"
