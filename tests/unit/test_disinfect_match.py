"""Disinfection names processes exactly, and never touches its own lineage (real processes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core.errors import UserError
from orchestrator.remediation.plan import RemediationPlan
from tests.conftest import module_util

irm_worm = module_util("irm_worm")


def _started(proc: subprocess.Popen[bytes], exe: str) -> None:
    """Until the child has exec'd (before that, /proc shows the forked Python; during it, an empty
    command line or the old name)."""
    deadline = time.monotonic() + 30  # a loaded machine (the lab suite beside) can take seconds
    while time.monotonic() < deadline:
        try:
            # exec done: the new executable, its name and its command line are all in place
            if os.readlink(f"/proc/{proc.pid}/exe") == exe and Path(f"/proc/{proc.pid}/cmdline").read_bytes() \
                    and Path(f"/proc/{proc.pid}/comm").read_text().strip() == os.path.basename(exe)[:15]:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"{exe} did not start")


@pytest.fixture()
def sleeper() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    exe = shutil.which("sleep")
    assert exe
    proc = subprocess.Popen([exe, "300"])
    _started(proc, os.path.realpath(exe))
    try:
        yield proc, os.path.realpath(exe)
    finally:
        proc.kill()
        proc.wait()


def pids(entries: list[str]) -> set[int]:
    return {pid for pid, _ in irm_worm.worm_processes(entries, False)}


def test_exact_name_and_executable_path_match(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, exe = sleeper
    assert proc.pid in pids(["sleep"])
    assert proc.pid in pids([exe])


def test_substrings_and_command_line_words_do_not_match(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, exe = sleeper
    for entry in ("s", "slee", "leep", "300", "sleep 300", exe[:-1], "/sleep"):
        assert proc.pid not in pids([entry]), entry


def test_own_lineage_is_never_matched() -> None:
    lineage = irm_worm.own_lineage()
    assert os.getpid() in lineage and os.getppid() in lineage and 1 in lineage
    me = os.path.basename(os.path.realpath(sys.executable))
    assert not lineage & pids([me, os.path.realpath(sys.executable)])


def test_a_hidden_worm_is_found_whatever_its_command_line_says(tmp_path: Path) -> None:
    # the old matcher skipped any command line holding "AnsiballZ": a worm could hide that way
    exe = tmp_path / "worm"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "300"], env={"X": "AnsiballZ"})
    _started(proc, str(exe))
    try:
        assert proc.pid in pids(["worm"]) and proc.pid in pids([str(exe)])
    finally:
        proc.kill()
        proc.wait()


def plan(processes: list[str]) -> RemediationPlan:
    return RemediationPlan.model_validate({"name": "p", "disinfection": {"processes": processes},
                                           "methods": {"linux": ["disinfect"]}})


@pytest.mark.parametrize("entry", ["sshd", "svchost.exe", "SVCHOST.EXE", "python3.11", "systemd", "bash", "*worm*",
                                   "wo?m", "/usr/bin/", "C:\\Windows\\", "/tmp/../bin/sh", " worm", ""])
def test_plan_refuses_essential_vague_or_unpathlike_process_entries(entry: str) -> None:
    with pytest.raises((ValueError, UserError)):
        plan([entry])


@pytest.mark.parametrize("entry", ["irm-lab-worm", "mssecsvc.exe", "tasksche.exe", "C:\\Windows\\Temp\\svchost.exe",
                                   "/tmp/.x/sshd"])
def test_plan_accepts_exact_names_and_executable_paths(entry: str) -> None:
    assert plan([entry]).disinfection.processes == [entry]
