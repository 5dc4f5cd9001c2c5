"""Two open incidents on one area: every plan is made from the strictest of both incidents' postures
and the vectors of both, so neither apply loosens the other's cuts, and recovering one reconnects only
what the other does not hold (through the fake runner; the lab test checks it by traffic)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.core.holds import held_by_others, strictest
from orchestrator.core.incident import IncidentSpec, Vector
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.core.posture import AreaState, Policy, policies
from tests.conftest import LAB_INVENTORY
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

AREA = "subsidiary-x"


def _blocked_ports(policy: Policy) -> set[int]:
    return {p for r in policy.input.rules if r.action == "drop" for p in r.dports}


def test_the_strictest_state_wins_area_by_area() -> None:
    one = {AREA: AreaState(posture="isolated", vectors_blocked=True), "hq": AreaState(posture="internet_cut")}
    two = {AREA: AreaState(posture="internet_cut", mobile_blocked=True, quarantined={f"{AREA}/office-1"})}
    merged = strictest(one, two)
    assert merged[AREA] == AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                                     quarantined={f"{AREA}/office-1"})
    assert merged["hq"].posture == "internet_cut"


def test_a_second_incident_keeps_the_first_ones_cuts_and_recovering_one_keeps_the_other(tmp_path: Path) -> None:
    inv = without_channels(load_inventory(LAB_INVENTORY))
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="A", vectors=["tcp/4445"]), "op")
    j.incidents.open(IncidentSpec(worm="B", vectors=["tcp/1139"]), "op")
    run = FakeRunner()

    def contain(incident: int) -> Containment:
        job = Containment(ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", loop=False,
                                         incident_id=incident), inv, j, NoDetections(), run=run, probe=FakeProber())
        job.run()
        return job

    first = contain(1)
    assert _blocked_ports(first.applier.planned(first.applier.states())["x-ws11"]) == {4445}
    # incident 2 plans, before its own first stage, with what incident 1 holds
    others, vectors = held_by_others(inv, j, 2)
    assert others[AREA].posture == "isolated" and vectors == [Vector(protocol="tcp", port=4445)]
    second = contain(2)
    both = second.applier.planned(second.applier.states())
    assert _blocked_ports(both["x-ws11"]) == {4445, 1139}
    assert run.live["x-ws11"] == both["x-ws11"].fingerprint  # what the host was given
    # incident 1's recovery of the area, planned: incident 2 still holds it, so nothing reopens
    reconnected = first.applier.planned_with({AREA: AreaState()})
    assert reconnected["gw-x"].fingerprint == both["gw-x"].fingerprint
    assert _blocked_ports(reconnected["x-ws11"]) == {4445, 1139}
    # incident 2 closed by force: incident 1 alone again
    j.incidents.close(2, "op", True, "test", {AREA: "isolated"})
    alone = first.applier.planned(first.applier.states())
    assert _blocked_ports(alone["x-ws11"]) == {4445}
    assert alone["gw-x"].fingerprint == policies(inv, [Vector(protocol="tcp", port=4445)],
                                                 first.applier.states())["gw-x"].fingerprint
