"""Containment's orchestration with a fake runner and prober (no root, no lab): stage order, what each
stage targets, the journal, host failures and unreachable hosts. The lab tests prove the same on real
hosts; these prove the decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.core.errors import ContainmentFailed, UserError
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from tests.conftest import LAB_INVENTORY
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

INV = without_channels(load_inventory(LAB_INVENTORY))
AREA = "subsidiary-x"
AREA_HOSTS = list(INV.area(AREA).hosts)


def _journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    return j


def _contain(j: Journal, run: FakeRunner, probe: FakeProber | None = None, **req: object) -> Containment:
    request = ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", loop=False, **req)  # type: ignore[arg-type]
    return Containment(request, INV, j, NoDetections(), run=run, probe=probe or FakeProber())


def _stages(j: Journal) -> list[tuple[str, str]]:
    return [(s.name, s.state) for s in j.stages.of(1, AREA)]


def test_stages_run_in_the_irm_order_each_on_its_chokepoint(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    (report,) = _contain(j, run).run()
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate", "contain_3_vectors", "contain_4_mobile"]
    assert [c.targets for c in run.calls] == [["edge-fw"], ["gw-x"], AREA_HOSTS, ["gw-x"]]
    assert _stages(j) == [("internet_cut", "done"), ("isolate", "done"), ("vectors", "done"), ("mobile", "done")]
    assert j.stages.postures(1)[AREA] == "isolated" and j.stages.postures(1)[f"{AREA}:mobile"] == "blocked"
    assert report.unreachable == [] and report.host_failures == {}
    # every host's journaled fingerprint is what it reported live
    rows = j.hosts.rows(1)
    assert {h: rows[h]["fingerprint"] for h in AREA_HOSTS} == {h: run.live[h] for h in AREA_HOSTS}
    # the policies handed to the hosts are the planned ones, keyed by host, with the run's token
    vectors = run.calls[2].extravars
    started = next(e for e in j.timeline.of(1) if e["kind"] == "containment_started")
    assert set(vectors["irm_policies"]) == set(AREA_HOSTS)
    assert vectors["irm_token"] == started["detail"]["token"] != "dry-run"  # the run's own token, journaled


def test_a_rerun_changes_nothing_new(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    _contain(j, run).run()
    first = dict(run.live)
    _contain(j, run).run()
    assert run.live == first  # the same planned fingerprints, applied again idempotently


def test_dry_run_journals_no_posture(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    _contain(j, run, dry_run=True).run()
    assert all(c.check for c in run.calls)
    assert j.stages.postures(1) == {} and run.live == {}


def test_an_unreachable_area_host_is_skipped_journaled_and_named(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    (report,) = _contain(j, run, FakeProber(down={"x-lt1"})).run()
    assert "x-lt1" not in run.calls[2].targets  # the vectors stage skips it
    assert report.unreachable == ["x-lt1"]
    assert j.hosts.rows(1)["x-lt1"]["reach"] == "unreachable"
    assert ("mobile", "done") in _stages(j)  # the boundaries did not wait on it


def test_an_unreachable_boundary_fails_its_stage_with_nothing_applied_there(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    with pytest.raises(ContainmentFailed, match="gw-x does not answer on its management path"):
        _contain(j, run, FakeProber(down={"gw-x"})).run()
    assert run.playbooks() == ["contain_1_internet_cut"]
    assert _stages(j) == [("internet_cut", "done"), ("isolate", "failed")]


def test_a_host_failure_in_the_vectors_stage_lets_the_boundaries_finish_and_is_named(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner(fail={("contain_3_vectors", "x-ws12"): "nft: syntax error"})
    (report,) = _contain(j, run).run()
    assert run.playbooks()[:4] == ["contain_1_internet_cut", "contain_2_isolate", "contain_3_vectors",
                                   "contain_4_mobile"]
    assert run.calls[4].playbook == "contain_3_vectors" and run.calls[4].targets == ["x-ws12"]  # retried at the end
    assert "x-ws12" in report.host_failures
    assert j.hosts.rows(1)["x-ws12"]["fingerprint"] == "absent"  # what it really enforces, not the plan


def test_a_boundary_failure_stops_the_run_and_journals_what_is_live(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner(fail={("contain_2_isolate", "gw-x"): "management path cut"})
    with pytest.raises(ContainmentFailed, match=r"stage isolate failed on gw-x.*SSH answers again"):
        _contain(j, run, confirm_timeout=0).run()  # the dead-man wait: 0 + 2 s here
    assert _stages(j) == [("internet_cut", "done"), ("isolate", "failed")]
    # after the timer, irm proves SSH is back on the boundary and every host behind it
    assert run.calls[-1].playbook == "reach" and {"gw-x", *AREA_HOSTS} <= set(run.calls[-1].targets)
    assert j.stages.postures(1).get(AREA) != "isolated"
    assert [e["kind"] for e in j.timeline.of(1)][-1] == "containment_failed"


def test_a_failed_dry_run_is_journaled_and_reported_as_a_dry_run(tmp_path: Path) -> None:
    from orchestrator.aftermath.report import describe

    j, run = _journal(tmp_path), FakeRunner(fail={("contain_2_isolate", "gw-x"): "unreachable"})
    with pytest.raises(ContainmentFailed):
        _contain(j, run, dry_run=True).run()
    failed = [e for e in j.timeline.of(1) if e["kind"] == "containment_failed"]
    assert failed[-1]["detail"]["dry_run"] is True
    assert describe(failed[-1]).startswith("containment dry run failed: ")
    assert j.stages.postures(1).get(AREA) in (None, "connected")


def test_several_areas_are_one_play_per_stage_journaled_per_area(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    request = ContainRequest(inventory=LAB_INVENTORY, areas=[AREA, "hq"], operator="op", loop=False)
    reports = Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber()).run()
    hq_hosts = list(INV.area("hq").hosts)
    # every first cut is the first play, every gateway's isolation the second, before any host-level work
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate", "contain_3_vectors", "contain_4_mobile"]
    assert [sorted(c.targets) for c in run.calls[:2]] == [["edge-fw"], sorted(["gw-x", "gw-hq"])]
    assert sorted(run.calls[2].targets) == sorted(AREA_HOSTS + hq_hosts)
    # each area is its own containment: stage rows, postures, events, report
    for area, hosts in ((AREA, AREA_HOSTS), ("hq", hq_hosts)):
        assert [(s.name, s.state, s.target) for s in j.stages.of(1, area)][:3] == [
            ("internet_cut", "done", "edge-fw"), ("isolate", "done", INV.area(area).gateway),
            ("vectors", "done", ",".join(h for h in run.calls[2].targets if h in hosts))]
        assert j.stages.postures(1)[area] == "isolated"
        kinds = [e["kind"] for e in j.timeline.of(1) if e["area"] == area]
        assert kinds.count("containment_started") == 1 and kinds[-1] == "containment_finished"
    assert [r.area for r in reports] == [AREA, "hq"]
    assert reports[0].first_cut_seconds is not None and reports[1].first_cut_seconds is not None
    assert set(reports[1].changed_hosts) == {"edge-fw", "gw-hq", *hq_hosts}
    # the plan names the gateways that hold a mobile segment, not every gateway of the run
    assert not INV.area("hq").mobile_segments and INV.area(AREA).mobile_segments
    (mobile,) = [s for s in Containment(request, INV, j, NoDetections(), run=run).stages() if s.name == "mobile"]
    assert mobile.summary == "block mobile segments subsidiary-x/vpn at gw-x"
    (alone,) = [s for s in Containment(ContainRequest(inventory=LAB_INVENTORY, area="hq", operator="op"), INV, j,
                                       NoDetections(), run=run).stages() if s.name == "mobile"]
    assert alone.summary == "no mobile segment to block (the policy of gw-hq is applied again)"


def test_several_areas_take_every_lock_or_none(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    j.locks.acquire("hq", 1, "bob", "other-run")
    holder = j.locks.held()[0]
    # held on another machine
    j.db.execute("UPDATE locks SET hostname='another-soc', machine='another-soc|boot|pid:[1]' WHERE area='hq'")
    request = ContainRequest(inventory=LAB_INVENTORY, areas=[AREA, "hq"], operator="op", loop=False)
    with pytest.raises(UserError):
        Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber()).run()
    assert run.calls == [] and [lock["area"] for lock in j.locks.held()] == ["hq"] and holder["operator"] == "bob"


def test_several_areas_a_gateway_failing_stops_both_with_nothing_claimed(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner(fail={("contain_2_isolate", "gw-hq"): "management path cut"})
    request = ContainRequest(inventory=LAB_INVENTORY, areas=[AREA, "hq"], operator="op", loop=False,
                             confirm_timeout=0)
    with pytest.raises(ContainmentFailed, match=r"stage isolate failed on gw-hq"):
        Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber()).run()
    for area in (AREA, "hq"):
        assert [(s.name, s.state) for s in j.stages.of(1, area)] == [("internet_cut", "done"), ("isolate", "failed")]
        assert j.stages.postures(1).get(area) != "isolated"  # the journal never claims an isolation not in place
        kinds = [e["kind"] for e in j.timeline.of(1) if e["area"] == area]
        assert "lockout_reverted" in kinds and kinds[-1] == "containment_failed"
    # no host-level work after the failed chokepoint, and SSH proven back behind the failed gateway
    assert "contain_3_vectors" not in run.playbooks()
    assert run.calls[-1].playbook == "reach" and {"gw-hq", *INV.area("hq").hosts} <= set(run.calls[-1].targets)
    assert j.locks.held() == []


def test_several_areas_an_unreachable_host_is_named_in_its_own_area_only(tmp_path: Path) -> None:
    j, run = _journal(tmp_path), FakeRunner()
    request = ContainRequest(inventory=LAB_INVENTORY, areas=[AREA, "hq"], operator="op", loop=False)
    x, hq = Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber(down={"hq-ws2"})).run()
    assert "hq-ws2" not in run.calls[2].targets
    assert hq.unreachable == ["hq-ws2"] and x.unreachable == []
    assert j.hosts.rows(1)["hq-ws2"]["area"] == "hq"


def _ios_gw_x(tmp_path: Path) -> tuple[Path, Inventory]:
    from tests.unit.test_inventory_validation import IOS, _children, make_inventory

    def mutate(d: dict[str, Any]) -> None:
        _children(d)["boundaries"]["children"]["gateways"]["hosts"]["gw-x"].update(IOS)

    path = make_inventory(tmp_path, mutate)
    return path, without_channels(load_inventory(path))


def test_an_ios_gateway_is_read_back_after_its_change_and_a_difference_fails_the_stage(tmp_path: Path) -> None:
    path, inv = _ios_gw_x(tmp_path)
    j, run = _journal(tmp_path), FakeRunner()
    job = Containment(ContainRequest(inventory=path, area=AREA, operator="op", loop=False, confirm_timeout=0), inv,
                      j, NoDetections(), run=run, probe=FakeProber())
    read: list[tuple[str, str]] = []

    def verify(host: Any, policy: Any) -> list[str]:
        read.append((host.name, policy.label))
        return ["IRM-GW-X-0123ABCD: entry 30 is 'permit tcp any any', not 'permit tcp any any established'"] \
            if policy.label.startswith("isolated") and len(read) == 1 else []

    job.applier.verify_device = verify
    job.applier.settle_device = lambda host, seconds: True
    with pytest.raises(ContainmentFailed, match=r"stage isolate failed on gw-x: gw-x: .*read back with netmiko: "
                                                r"IRM-GW-X-0123ABCD: entry 30 is 'permit tcp any any'"):
        job.run()
    # read after the change, then, after the failure, against the last confirmed (connected) policy
    assert read == [("gw-x", "isolated: subsidiary-x"), ("gw-x", "connected")]
    assert [(s.name, s.state) for s in j.stages.of(1, AREA)] == [("internet_cut", "done"), ("isolate", "failed")]
    assert j.stages.postures(1).get(AREA) != "isolated"
    # the edge (nftables) is never read with netmiko; the next run reads gw-x again and goes on
    job = Containment(ContainRequest(inventory=path, area=AREA, operator="op", loop=False), inv, j, NoDetections(),
                      run=FakeRunner(), probe=FakeProber())
    job.applier.verify_device = verify
    job.run()
    assert j.stages.postures(1).get(AREA) == "isolated" and read[-1][0] == "gw-x"


def test_ios_boundaries_get_the_policies_they_may_hold_for_their_compare_and_swap(tmp_path: Path) -> None:
    """An IOS device (or a Windows host) cannot fingerprint its state: the apply hands it the policies
    whose rendering it may hold, kept by the journal under their fingerprints; Linux hosts get fingerprints."""
    j, run = _journal(tmp_path), FakeRunner()
    request = ContainRequest(inventory=LAB_INVENTORY, area="subsidiary-y", operator="op", loop=False)

    def contain() -> None:
        containment = Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber())
        containment.applier.verify_device = lambda host, policy: []  # the device read back as planned
        containment.run()

    contain()
    isolate = next(c for c in run.calls if c.playbook == "contain_2_isolate")
    assert isolate.targets == ["gw-y"]
    planned = isolate.extravars["irm_policies"]["gw-y"]
    expected = isolate.extravars["irm_expect_policies"]
    assert list(expected) == ["gw-y"]  # the Linux boundaries and hosts compare fingerprints on the host
    assert expected["gw-y"][0]["label"] == "no irm rules"
    assert planned in expected["gw-y"]  # journaled before the apply: a kill after it still knows the policy
    contain()
    again = [c for c in run.calls if c.playbook == "contain_2_isolate"][-1]
    assert planned in again.extravars["irm_expect_policies"]["gw-y"]
    vectors = next(c for c in run.calls if c.playbook == "contain_3_vectors")
    assert vectors.extravars["irm_expect_policies"] == {}
