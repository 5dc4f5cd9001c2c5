"""The boundaries as sensors, against the real lab: irm's own drop rules count the worm's attempts.

The worm is seeded on x-ws11 (every other area host patched, so it stays there), the area is
contained, and ``irm status --verify`` reads the live counters of gw-x and of the area hosts: the count
for x-ws11's sub-area rises while the worm runs, and once ``irm remediate`` has removed the worm it no
longer moves. The counts are the kernel's, read from nftables; nothing irm wrote stands in for them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import events, infected, matrix, probe, set_patched, stop_sshd

pytestmark = pytest.mark.lab


def _drops(journal: Path, segment: str) -> int:
    status = irm("status", "--verify", "--json", "--journal", str(journal), timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
    return int(json.loads(status.stdout)["verify"]["boundary_drops"].get(segment, {}).get("packets", 0))


def test_the_worms_attempts_are_counted_while_it_runs_and_stop_after_remediation(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        # the worm stays on x-ws11: every other area host is patched (it still tries them, and is counted)
        set_patched(inv, [h.name for h in inv.hosts.values() if h.kind == "area" and h.name != "x-ws11"], True)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", "x-ws11", check=True)
        irm("contain", "--area", "subsidiary-x", "--yes", "--no-loop", "--journal", str(journal), check=True,
            timeout=300)
        segment = str(inv.hosts["x-ws11"].segment)
        first = _drops(journal, segment)
        time.sleep(3)  # the worm tries twice a second from each infected host
        second = _drops(journal, segment)
        assert 0 < first < second, (first, second)
        rem = irm("remediate", "--area", "subsidiary-x", "--plan", str(ROOT / "plans" / "lab-worm.yml"), "--yes",
                  "--journal", str(journal), timeout=900)
        assert rem.returncode == 0, rem.stdout + rem.stderr
        assert not infected(inv)
        after = _drops(journal, segment)
        time.sleep(3)
        assert _drops(journal, segment) == after, "the counters moved after the worm was removed"
        shown = irm("status", "--verify", "--journal", str(journal), timeout=300).stdout
        assert f"{segment}: {after} attempt(s)" in shown, shown


@pytest.mark.parametrize(("area", "seed", "neighbour", "unreachable"), [
    ("subsidiary-x", "x-ws11", "x-ws21", False), ("subsidiary-y", "y-ws21", "y-ws11", True)],
    ids=["host-rule", "ios-gateway-unreachable-host"])
def test_the_sub_area_loop_quarantines_the_sub_area_whose_worm_irms_rules_drop(
        tmp_path: Path, area: str, seed: str, neighbour: str, unreachable: bool) -> None:
    """The only detection source is an IDS log that stays empty: the sub-area loop's detections are irm's
    drop counters, read live. On x-ws11 its own vector rule drops the worm (nftables). y-ws21's sshd is
    killed first: irm cannot block the vectors on it, and gw-y (an IOS access list, its hit counts read
    with netmiko) drops what it sends out of the area. Either way the seeded host's sub-area is
    quarantined (proven by traffic), its neighbour's is not, and the loop ends once no sub-area still
    connected makes irm's rules drop anything."""
    journal, eve = tmp_path / "journal.db", tmp_path / "eve.json"
    eve.write_text("")
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, [h.name for h in inv.hosts.values() if h.kind == "area" and h.name != seed], True)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", seed, check=True)
        assert matrix(inv, [probe(inv, seed, neighbour, 22)])[(seed, neighbour, 22)] == "open"
        if unreachable:
            assert stop_sshd(inv, seed)
        run = irm("contain", "--area", area, "--yes", "--source", f"suricata:{eve}", "--quiet-window", "12s",
                  "--max-wait", "4m", "--confirm-timeout", "15", "--journal", str(journal), timeout=600)
        # an unreachable host is exit 6 (protected by the boundary only), after the loop
        assert run.returncode == (6 if unreachable else 0), run.stdout + run.stderr
        segment = str(inv.hosts[seed].segment)
        drops = events(journal, "boundary_drops")
        where = inv.area(area).gateway if unreachable else seed
        assert drops and {(e["area"], e["detail"]["segment"], e["detail"]["host"]) for e in drops} == {
            (area, segment, where)}, [e["detail"] for e in drops]
        assert [e["detail"]["sub_areas"] for e in events(journal, "subarea_quarantined")] == [[segment]]
        assert "the spread has stopped" in run.stdout
        assert not events(journal, "detections")  # the IDS log said nothing: irm's own rules did
        # the quarantine holds by traffic: the seeded host no longer reaches its neighbour's sub-area
        assert matrix(inv, [probe(inv, seed, neighbour, 22)])[(seed, neighbour, 22)] != "open"
