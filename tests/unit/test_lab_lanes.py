"""The lab lane's two halves (scripts/lab_lanes.py) and what keeps two labs apart on one machine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from orchestrator.core.runner import CONTROL_ROOT, connection_dir, node_connection_dir, private_dir, runner_env
from orchestrator.lab.builder import processes_mentioning
from tests.conftest import ROOT


def _lanes() -> Any:
    spec = importlib.util.spec_from_file_location("lab_lanes", ROOT / "scripts" / "lab_lanes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_lab_test_file_runs_in_exactly_one_lane_and_the_pinned_ones_in_lane_a() -> None:
    lanes = _lanes()
    a, b = lanes.split()
    files = sorted(p.name for p in (ROOT / "tests" / "integration").glob("test_*.py"))
    assert sorted(a + b) == files and not set(a) & set(b)
    assert set(a) >= lanes.LANE_A_ONLY and b


def test_lane_b_inventory_differs_only_in_its_lab_name_and_state_dir(tmp_path: Path) -> None:
    lanes = _lanes()
    lanes.inventory(tmp_path / "inv", "irmlane")
    mine = yaml.safe_load((tmp_path / "inv" / "group_vars" / "all.yml").read_text())
    shipped = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text())
    assert mine.pop("irm_lab_name") == "irmlane" and shipped.pop("irm_lab_name") == "irmlab"
    assert mine.pop("irm_lab_state_dir") == "/var/lib/irm-lab/irmlane"
    shipped.pop("irm_lab_state_dir")
    assert mine == shipped
    assert (tmp_path / "inv" / "hosts.yml").read_text() == (ROOT / "inventories" / "lab" / "hosts.yml").read_text()


def test_a_lab_s_processes_are_those_naming_its_directory_not_a_longer_name(tmp_path: Path) -> None:
    """Tearing one lab down must not kill the processes of another whose directory only starts alike."""
    mine, other = tmp_path / "irmlab", tmp_path / "irmlabb"
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", arg])
             for arg in (str(mine), f"{mine}/ssh/key", str(other), f"{other}/ssh/key")]
    try:
        found = set(processes_mentioning(str(mine)))
        assert {procs[0].pid, procs[1].pid} <= found and not {procs[2].pid, procs[3].pid} & found
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_each_irm_process_has_its_own_connection_directory() -> None:
    """Ansible's SSH control sockets and network_cli's persistent connections live in a directory of this
    process only: another irm (or another lab's host at the same address) never shares a connection."""
    env = runner_env()
    assert env["ANSIBLE_SSH_CONTROL_PATH_DIR"] == connection_dir()
    assert len(connection_dir()) + 1 + 40 + 17 < 108  # ssh's temporary socket name fits a Unix socket path
    assert env["ANSIBLE_PERSISTENT_CONTROL_PATH_DIR"] == f"{connection_dir()}/pc"
    assert Path(connection_dir()).stat().st_mode & 0o777 == 0o700
    # an execution node keeps this run's sockets in its own ~/.ansible/cp, one directory per node and run
    assert node_connection_dir("z-node") == f"~/.ansible/cp/{Path(connection_dir()).name}-z-node"
    other = subprocess.run([sys.executable, "-c", "from orchestrator.core.runner import connection_dir\n"
                            "print(connection_dir())"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert other.stdout.strip() != connection_dir() and not Path(other.stdout.strip()).exists()  # removed at exit


def test_a_killed_runs_socket_directories_are_swept_and_a_live_ones_kept() -> None:
    root = Path(CONTROL_ROOT).expanduser()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a pid that was and is no more
    stale = [root / f"irm-{dead}-abcdefgh", root / f"irm-{dead}-abcdefgh-z-node", root / f"irmw-{dead}-ijklmnop"]
    live = root / f"irmw-{os.getpid()}-qrstuvwx"
    other = root / "someone-else"
    for d in [*stale, live, other]:
        d.mkdir(exist_ok=True)
    try:
        made = Path(private_dir("irmw-"))
        assert made.name.startswith(f"irmw-{os.getpid()}-") and made.stat().st_mode & 0o777 == 0o700
        assert not any(d.exists() for d in stale)
        assert live.exists() and other.exists()
        made.rmdir()
    finally:
        for d in [*stale, live, other]:
            if d.exists():
                d.rmdir()
