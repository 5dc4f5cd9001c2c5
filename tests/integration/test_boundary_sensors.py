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
from tests.integration.lab_tools import infected, set_patched

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
