"""`irm contain --area A --area B` on the real lab: the worm has crossed into a second area; one command contains
both, every first cut in one play at the edge, and traffic proves each area is cut from the Internet
and from the other, while each stays its own containment in the journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.lab import traffic
from tests.conftest import LAB_INVENTORY, built_lab, irm
from tests.integration.lab_tools import infected, matrix, probe, set_patched, wait_for

pytestmark = pytest.mark.lab


def test_two_infected_areas_are_contained_at_once_and_each_is_journaled_as_its_own(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, ["hq-erp"], True)  # the ERP stays clean: the critical flow's server
        set_patched(inv, ["y-ws11", "y-ws12", "y-ws21"], True)  # (subsidiary-y has its own test)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", "x-ws11", check=True)  # the worm crosses into hq on its own, in seconds
        wait_for(lambda: any(h.startswith("hq-") for h in infected(inv)), 30, "the worm in both areas")
        before = matrix(inv, [probe(inv, "x-ws21", "inet-web", 80), probe(inv, "hq-ws2", "inet-web", 80)])
        assert set(before.values()) == {"open"}
        out = irm("contain", "--area", "subsidiary-x", "--area", "hq", "--yes", "--quiet-window", "4",
                  "--confirm-timeout", "30", "--journal", str(journal))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "subsidiary-x: first cut after" in out.stdout and "hq: first cut after" in out.stdout
        # traffic: neither area reaches the Internet, nor the other area on the worm's port
        after = matrix(inv, [probe(inv, "x-ws21", "inet-web", 80), probe(inv, "hq-ws2", "inet-web", 80),
                             probe(inv, "x-ws22", "hq-ws2", 4445), probe(inv, "hq-ws2", "x-ws22", 4445)])
        assert "open" not in after.values(), after  # refused or dropped on the way
        # management still reaches every boundary and host
        mgmt = matrix(inv, traffic.management_probes(inv))
        assert set(mgmt.values()) == {"open"}, mgmt
        # the validated critical flow stays open through both containments
        assert set(matrix(inv, [probe(inv, "x-ws21", "hq-erp", 8069)]).values()) == {"open"}
        with Journal.reader(journal) as j:
            cuts = {area: next(s for s in j.stages.of(1, area) if s.name == "internet_cut") for area in ("subsidiary-x",
                                                                                                    "hq")}
            assert {s.state for s in cuts.values()} == {"done"}
            # one play cut both: the same change of the edge's ruleset
            assert len({s.detail["first_applied_at"] for s in cuts.values()}) == 1
            finished = [str(e["area"]) for e in j.timeline.of(1) if e["kind"] == "containment_finished"]
            assert sorted(finished) == ["hq", "subsidiary-x"]
        status = irm("status", "--json", "--journal", str(journal))
        areas = json.loads(status.stdout)["areas"]
        assert areas["hq"]["posture"] == "isolated" and areas["subsidiary-x"]["posture"] == "isolated"
