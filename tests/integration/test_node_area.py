"""subsidiary-z, the lab's area the SOC has no route into: every play on its hosts runs on its jump host
z-node (ansible-runner's streaming worker over SSH) and their management comes from there. Contained,
remediated and recovered end to end, proven by the worm and by traffic; a node that is down is refused
before anything is applied, and one that dies mid-stage fails that stage cleanly.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.lab.topology import plan_lab
from tests.conftest import BIN, LAB_INVENTORY, NODE_AREA_HOSTS, ROOT, built_lab, irm
from tests.integration.lab_tools import (
    approve_args,
    infected,
    matrix,
    probe,
    set_patched,
    stages,
    wait_for,
    worm_attempts,
)

pytestmark = pytest.mark.lab

AREA = "subsidiary-z"
OUTSIDE = ["hq-erp", "hq-ws1", "hq-ws2", "x-ws11", "x-ws12", "x-ws13", "x-ws21", "x-ws22", "x-lt1", "x-lt2",
           "y-ws11", "y-ws12", "y-ws21"]


@dataclass
class Zone:
    inv: Inventory
    journal: Path
    contain_out: str
    opened_at: datetime


def _node_link(inv: Inventory, state: str) -> None:
    """The node's only link down (the node is cut off), or up again with the routes the kernel dropped."""
    assert inv.lab is not None
    ns = f"{inv.lab.name}-z-node"
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", state], check=True)
    if state == "up":
        for route in plan_lab(inv).routes:
            if route.ns == ns:
                subprocess.run(["ip", "-n", ns, "route", "replace", str(route.prefix), "via", str(route.via)],
                               check=True)


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zone]:
    journal = tmp_path_factory.mktemp("zone") / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, OUTSIDE, True)  # the worm stays in subsidiary-z until it is contained
        set_patched(inv, list(NODE_AREA_HOSTS), False)  # (test labs start with subsidiary-z patched)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", "z-ws11", check=True)
        wait_for(lambda: "z-ws21" in infected(inv), 30, "the worm to reach the other sub-area of subsidiary-z")
        out = irm("contain", "--area", AREA, "--yes", "--journal", str(journal), "--quiet-window", "4",
                  "--confirm-timeout", "30", timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        opened_at = datetime.now(UTC)
        set_patched(inv, OUTSIDE[:3], False)  # HQ vulnerable again: only the containment protects it
        wait_for(lambda: len(worm_attempts(inv, opened_at, set(OUTSIDE[:3]))) >= 10, 60,
                 "ten worm attempts at HQ after the cut")
        yield Zone(inv, journal, out.stdout, opened_at)


def test_contained_through_the_node_and_the_spread_stops(zone: Zone) -> None:
    assert "the spread has stopped" in zone.contain_out
    done = {st.name: st.state for st in stages(zone.journal, "containment") if not st.check_mode}
    assert done == dict.fromkeys(("internet_cut", "isolate", "vectors", "mobile", "subarea"), "done")
    # the worm kept trying at HQ after the cut; no host outside subsidiary-z caught it
    assert set(infected(zone.inv)) <= {"z-ws11", "z-ws21"}
    assert _node_jobs(zone.inv) == []  # every job directory the node ran is gone


def test_the_soc_has_no_route_into_the_area_but_its_node_manages_it(zone: Zone) -> None:
    inv = zone.inv
    seen = matrix(inv, [probe(inv, "soc-console", "z-ws11", 22), probe(inv, "soc-console", "z-node", 22),
                        probe(inv, "z-node", "z-ws11", 22), probe(inv, "z-node", "z-ws21", 22),
                        probe(inv, "z-ws11", "hq-erp", 8069), probe(inv, "z-ws11", "z-ws21", 4445)])
    assert seen == {("soc-console", "z-ws11", 22): "error", ("soc-console", "z-node", 22): "open",
                    ("z-node", "z-ws11", 22): "open", ("z-node", "z-ws21", 22): "open",  # across the quarantine
                    ("z-ws11", "hq-erp", 8069): "timeout", ("z-ws11", "z-ws21", 4445): "timeout"}
    # the node runs the controller's versions and files, as `irm node check --json` reports it
    check = irm("node", "check", "--json", "-i", str(LAB_INVENTORY))
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout) == [{"node": "z-node", "ok": True, "problems": [], "removed": []}]


def test_a_node_that_is_down_is_refused_and_nothing_is_applied(zone: Zone) -> None:
    before = len(stages(zone.journal))
    _node_link(zone.inv, "down")
    try:
        out = irm("contain", "--area", AREA, "--yes", "--journal", str(zone.journal), "--no-loop",
                  "--confirm-timeout", "30")
    finally:
        _node_link(zone.inv, "up")
    assert out.returncode != 0
    assert "execution node z-node" in out.stderr and "--from-soc" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert stages(zone.journal)[before:] == []  # refused before the first stage


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_a_node_dying_mid_stage_fails_the_stage_cleanly_and_a_rerun_converges(zone: Zone) -> None:
    assert zone.inv.lab is not None
    ns = f"{zone.inv.lab.name}-z-node"
    before = len(stages(zone.journal))
    out = irm("contain", "--area", AREA, "--yes", "--journal", str(zone.journal), "--no-loop",
              "--confirm-timeout", "10", timeout=300,
              faults={"IRM_FAULT_NODE_CUT": f"contain_3_vectors.yml|ip -n {ns} link set eth0 down"})
    try:
        assert out.returncode != 0, out.stdout
        assert "execution node z-node" in out.stderr and "Traceback" not in out.stderr, out.stdout + out.stderr
        # the host-level stage the node died in is failed for the hosts it did not finish, the boundary
        # stage after it ran from the SOC, and the retry of the hosts behind the node was refused
        rows = stages(zone.journal)[before:]
        assert [st.state for st in rows if st.name == "vectors"] == ["failed"], rows
        assert all(st.state != "running" for st in rows)
    finally:
        _node_link(zone.inv, "up")
    again = irm("contain", "--area", AREA, "--yes", "--journal", str(zone.journal), "--no-loop",
                "--confirm-timeout", "30", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    verify = irm("status", "--verify", "--journal", str(zone.journal))
    assert verify.returncode == 0 and "every live ruleset is the one the journal says" in verify.stdout, verify.stdout


def test_remediated_and_recovered_through_the_node(zone: Zone) -> None:
    inv = zone.inv
    rem = irm("remediate", "--area", AREA, "--plan", "plans/lab-worm.yml", "--canary", "z-ws11", "--yes",
              "--journal", str(zone.journal), timeout=300)
    assert rem.returncode == 0, rem.stdout + rem.stderr
    assert set(infected(inv)) & {"z-ws11", "z-ws21"} == set()
    irm(*approve_args(inv, AREA), "--journal", str(zone.journal), check=True)
    rec = subprocess.run([str(BIN / "irm"), "recover", "--area", AREA, "--yes", "--soak", "3s", "--quiet-window",
                          "3s", "--journal", str(zone.journal)], cwd=ROOT, capture_output=True, text=True,
                         timeout=400, env={**os.environ, "COLUMNS": "200"})
    assert rec.returncode == 0, rec.stdout + rec.stderr
    closed = {k: v for k, v in matrix(inv).items() if v != "open"}
    assert closed == {}, closed
    assert _node_jobs(inv) == []


def _node_jobs(inv: Inventory) -> list[str]:
    """The job directories left in z-node's own /tmp (the lab gives an execution node's sessions a /tmp
    of its own), after proving that /tmp is the one irm's SSH sessions to the node see."""
    from orchestrator.core import nodes
    from orchestrator.lab.builder import node_tmp

    node = inv.hosts["z-node"]
    marker = f"irm-test-{os.getpid()}"
    seen = nodes._ssh(nodes.execution_node(node), f"touch /tmp/{marker} && ls /tmp", timeout=30)
    assert marker in seen.split() and (node_tmp(node) / marker).exists()
    (node_tmp(node) / marker).unlink()
    return glob.glob(str(node_tmp(node) / "irm-job-*"))
