"""Remediation's decisions with a fake runner and prober (no root, no lab): the canary gate, method
fall-through in the plan's order, the retry after disinfection, manual-needed hosts, unreachable hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.core.errors import CanaryFailed, RemediationIncomplete
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.remediation.phase import RemediateRequest, Remediation
from tests.conftest import LAB_INVENTORY, ROOT
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

INV = without_channels(load_inventory(LAB_INVENTORY))
AREA = "subsidiary-x"
HOSTS = list(INV.area(AREA).hosts)
PLAN = ROOT / "plans" / "lab-worm.yml"
VERIFIED = {"remediate_verify": {"irm_verification": {"infected": [], "fixed": True, "health": []}}}


@pytest.fixture()
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    Containment(ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", loop=False), INV, j,
                NoDetections(), run=FakeRunner(), probe=FakeProber()).run()
    return j


def _remediate(j: Journal, run: FakeRunner, probe: FakeProber | None = None,
               canaries: list[str] | None = None) -> Remediation:
    req = RemediateRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", plan_path=PLAN, canaries=canaries)
    return Remediation(req, INV, j, run=run, probe=probe or FakeProber())


def _states(j: Journal) -> dict[str, str]:
    return {h: r["state"] for h, r in j.remediation.of(1, AREA).items()}


def test_canaries_first_then_the_rest_every_host_verified(journal: Journal) -> None:
    run = FakeRunner(playbook_facts=VERIFIED)
    report = _remediate(journal, run, canaries=["x-ws11"]).run()
    assert [(c.playbook, c.targets) for c in run.calls[:3]] == [
        ("remediate_package", ["x-ws11"]), ("remediate_antivirus", ["x-ws11"]), ("remediate_verify", ["x-ws11"])]
    rest = [h for h in HOSTS if h != "x-ws11"]
    assert [(c.playbook, sorted(c.targets)) for c in run.calls[3:]] == [
        ("remediate_package", sorted(rest)), ("remediate_antivirus", sorted(rest)), ("remediate_verify", sorted(rest))]
    assert _states(journal) == {h: "verified" for h in HOSTS}
    assert report.hosts_in("verified") == sorted(HOSTS)
    assert journal.remediation.latest_plan(1, AREA) is not None  # the plan is stored with the incident


def test_a_canary_that_does_not_verify_stops_everything(journal: Journal) -> None:
    run = FakeRunner()  # verification reports nothing: not verified
    with pytest.raises(CanaryFailed, match="canary x-ws11 failed, the other 6 host"):
        _remediate(journal, run, canaries=["x-ws11"]).run()
    assert all(c.targets == ["x-ws11"] for c in run.calls)  # no other host touched
    states = _states(journal)
    assert states.pop("x-ws11") == "failed" and set(states.values()) == {"pending"}


def test_a_failing_method_falls_through_and_is_retried_after_disinfection(journal: Journal) -> None:
    run = FakeRunner(playbook_facts=VERIFIED,
                     fail={("remediate_antivirus", "x-ws12"): "the worm killed the antivirus"},
                     fail_once={("remediate_package", "x-ws21"): "dpkg lock held by the worm"})
    _remediate(journal, run, canaries=["x-ws11"]).run()
    # x-ws12: antivirus failed, the disinfect method delivered the disinfection
    assert [c.targets for c in run.calls if c.playbook == "remediate_disinfect"] == [["x-ws12"]]
    # x-ws21: the package failed while the worm held the lock; retried once disinfected, it worked
    package_runs = [c.targets for c in run.calls if c.playbook == "remediate_package"]
    assert package_runs[-1] == ["x-ws21"]
    assert [e["detail"]["hosts"] for e in journal.timeline.of(1) if e["kind"] == "remediation_retry"] == [["x-ws21"]]
    assert _states(journal) == {h: "verified" for h in HOSTS}


def test_a_host_every_method_fails_on_is_manual_needed(journal: Journal) -> None:
    run = FakeRunner(playbook_facts=VERIFIED, fail={(m, "x-ws13"): "blocked by the worm" for m in
                                                   ("remediate_package", "remediate_antivirus", "remediate_disinfect")})
    with pytest.raises(RemediationIncomplete, match="x-ws13 \\(manual-needed: no working method for disinfect, fix"):
        _remediate(journal, run, canaries=["x-ws11"]).run()
    states = _states(journal)
    assert states.pop("x-ws13") == "manual-needed" and set(states.values()) == {"verified"}


def test_an_unreachable_host_is_not_waited_on_and_a_default_canary_moves(journal: Journal) -> None:
    run = FakeRunner(playbook_facts=VERIFIED)
    with pytest.raises(RemediationIncomplete, match="x-lt1 \\(unreachable"):
        _remediate(journal, run, FakeProber(down={"x-lt1"})).run()
    assert not any("x-lt1" in c.targets for c in run.calls)
    assert _states(journal)["x-lt1"] == "unreachable"


def test_an_uncontained_area_is_refused_with_nothing_applied(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    run = FakeRunner()
    with pytest.raises(Exception, match="is not contained"):
        _remediate(j, run).run()
    assert run.calls == [] and _states(j) == {}
