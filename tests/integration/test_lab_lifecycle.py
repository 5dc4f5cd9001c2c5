"""lab up / down: everything is built, and nothing is left behind, even after a killed ``up``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import BIN, LAB_INVENTORY, ROOT, irm
from tests.integration.lab_tools import recorded_pids, traces, wait_for

pytestmark = pytest.mark.lab


def test_up_builds_everything_and_down_leaves_nothing() -> None:
    inv = load_inventory(LAB_INVENTORY)
    assert inv.lab is not None
    irm("lab", "down")
    assert traces(inv).empty
    parent_existed = Path(inv.lab.state_dir).parent.exists()
    try:
        up = irm("lab", "up", check=True)
        assert "is up: 23 hosts" in up.stdout
        built = traces(inv)
        assert len(built.namespaces) == 23
        assert built.links == ["irmlab-soc"]
        pids = recorded_pids(inv)
        # sshd everywhere but gw-y, the emulated IOS device there; services on inet-web and the 16 area hosts
        assert len(pids) == 23 + 17
        assert all(os.path.exists(f"/proc/{p}") for p in pids)
        # every namespace has its own nftables ruleset, empty as before an incident
        for ns in built.namespaces:
            out = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"],
                                 capture_output=True, text=True, check=True).stdout
            assert out.strip() == "", ns
        # the lab key is the lab's own, never the machine's
        assert Path(inv.lab.state_dir, "ssh", "id_ed25519").exists()
        # namespaces have no route leaving the lab
        routes = subprocess.run(["ip", "-n", "irmlab-x-ws11", "route", "show"], capture_output=True,
                                text=True, check=True).stdout
        assert "default" not in routes
    finally:
        down = irm("lab", "down")
    assert down.returncode == 0, down.stderr
    left = traces(inv, pids)
    assert left.empty, left
    if not parent_existed:
        assert not Path(inv.lab.state_dir).parent.exists()


def test_up_on_an_existing_lab_says_so(lab: Path) -> None:
    inv = load_inventory(lab)
    before = traces(inv)
    again = irm("lab", "up")
    assert again.returncode == 3
    assert again.stderr.startswith("irm: error: lab 'irmlab' is already up (23 namespaces")
    assert traces(inv).namespaces == before.namespaces
    assert "Traceback" not in again.stderr


def test_down_after_killed_up_leaves_nothing() -> None:
    inv = load_inventory(LAB_INVENTORY)
    irm("lab", "down")
    proc = subprocess.Popen([str(BIN / "irm"), "lab", "up"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    hosts = Path(inv.lab.state_dir if inv.lab else "", "hosts")
    try:
        # kill it once some hosts run their sshd but before the lab is complete
        wait_for(lambda: len(list(hosts.glob("*/lab/sshd.pid"))) >= 3, 30, "three hosts' sshd", interval=0.005)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        half = traces(inv)
        assert half.namespaces and half.processes, "the lab was not half-built when killed"
        pids = recorded_pids(inv)
        assert len(pids) < 26, "the lab was already complete when killed"
    finally:
        down = irm("lab", "down")
    assert down.returncode == 0, down.stderr
    left = traces(inv, pids)
    assert left.empty, left
