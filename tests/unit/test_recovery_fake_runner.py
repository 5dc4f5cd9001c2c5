"""Recovery's decisions with a fake runner, prober and path prober (no root, no lab): the IRM order,
one step at a time, the halt and rollback on a new infection, the resume after a kill, declining at a
prompt, and the final state with no irm table anywhere."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.core.detection import Detection
from orchestrator.core.errors import RecoveryHalted, UserError
from orchestrator.core.events import parse
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Approver, Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.recovery import approval
from orchestrator.recovery.phase import RecoverRequest, Recovery
from orchestrator.remediation.phase import RemediateRequest, Remediation
from tests.conftest import LAB_INVENTORY, ROOT
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

AREA = "subsidiary-x"
PLAN = ROOT / "plans" / "lab-worm.yml"
VERIFIED = {"remediate_verify": {"irm_verification": {"infected": [], "fixed": True, "health": []}}}


@dataclass
class Detections:
    """A detection source whose detections a test adds while the recovery runs."""

    found: list[Detection] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)  # what problems() says (a test kills the feed)

    def detections(self, since: datetime) -> list[Detection]:
        return [d for d in self.found if d.time >= since]

    def problems(self, now: datetime) -> list[str]:
        return list(self.dead)


class _AllOpen:
    """The lab's paths, every one answering (no traffic is sent)."""

    def candidates(self, inv: Inventory) -> list[Any]:
        from orchestrator.lab.traffic import baseline_probes

        return list(baseline_probes(inv))

    def probe(self, inv: Inventory, probes: list[Any]) -> list[Any]:
        from orchestrator.lab.traffic import ProbeResult

        return [ProbeResult(probe=p, outcome="open") for p in probes]


@dataclass
class Setup:
    inv: Inventory
    journal: Journal
    run: FakeRunner


@pytest.fixture()
def setup(tmp_path: Path) -> Setup:
    key = tmp_path / "ciso"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    inv = without_channels(load_inventory(LAB_INVENTORY)).model_copy(update={"approvers": (
        Approver(name="ciso", role="CISO", key=(tmp_path / "ciso.pub").read_text().strip()),)})
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    run = FakeRunner(playbook_facts=VERIFIED)
    Containment(ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", loop=False), inv, j,
                NoDetections(), run=run, probe=FakeProber()).run()
    Remediation(RemediateRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", plan_path=PLAN), inv, j,
                run=run, probe=FakeProber()).run()
    approval.approve(inv, j, j.incidents.all()[0], AREA, key, "verified", "op")
    run.calls.clear()
    return Setup(inv, j, run)


def _recovery(s: Setup, source: Any = None, **req: Any) -> Recovery:
    request = RecoverRequest(**{"inventory": LAB_INVENTORY, "area": AREA, "operator": "op", "soak": 0.0,
                                "quiet_window": 0.0, "poll": 0.01, "assume_yes": True, **req})
    return Recovery(request, s.inv, s.journal, source or NoDetections(), run=s.run, probe=FakeProber(),
                    paths=_AllOpen())


def _steps(j: Journal) -> list[tuple[str, str]]:
    return [(st.name, st.state) for st in j.stages.of(1, AREA) if st.phase == "recovery"]


def test_the_five_steps_in_the_irm_order_leave_no_irm_table(setup: Setup) -> None:
    report = _recovery(setup).run()
    # no sub-area was quarantined (containment ran without the loop): step 2 is one step
    assert [n for n, _ in _steps(setup.journal)] == ["vectors", "subareas", "mobile", "lan", "internet"]
    assert {state for _, state in _steps(setup.journal)} == {"done"}
    assert report.remaining == []
    assert set(setup.run.live.values()) == {"absent"}  # every host and boundary as before the incident
    events = setup.journal.timeline.of(1)
    assert [e["kind"] for e in events][-1] == "recovery_finished"
    # the whole loop's timeline reads back as the event models (incident_opened holds the spec)
    unread = [e["kind"] for e in events[1:] if parse(e["kind"], e["detail"]) is None]
    assert unread == [] and len(events) > 20


def test_step_mode_does_one_step_and_only_refuses_to_skip(setup: Setup) -> None:
    one = _recovery(setup, next_only=True).run()
    assert one.done == ["vectors"] and one.remaining == ["subareas", "mobile", "lan", "internet"]
    with pytest.raises(Exception, match="internet cannot run now: the next step is step 2"):
        _recovery(setup, only="internet").run()


def test_a_declined_step_changes_nothing(setup: Setup) -> None:
    rec = _recovery(setup)
    rec.confirm = lambda step, changes: False
    report = rec.run()
    assert report.declined == "vectors" and _steps(setup.journal) == [] and setup.run.calls[-1].playbook == \
        "remediate_verify"  # only the fresh verification ran


def test_a_new_infection_during_a_soak_halts_and_puts_the_previous_posture_back(setup: Setup) -> None:
    source = Detections()
    rec = _recovery(setup, source=source, soak=1.0)
    applied = rec._apply  # the detection appears once the mobile segments are reconnected

    def apply(spec: Any, target: Any, **kw: Any) -> Any:
        outcome = applied(spec, target, **kw)
        if spec.name == "mobile":
            source.found.append(Detection(time=datetime.now(UTC), host="x-ws21", signature="Lab.Worm.IRM-A",
                                          action="detected", source_address=None,
                                          segment="subsidiary-x/office-2", area=AREA))
        return outcome

    rec._apply = apply  # type: ignore[method-assign, assignment]
    with pytest.raises(RecoveryHalted, match="new infection during the soak of step 3"):
        rec.run()
    assert _steps(setup.journal) == [("vectors", "done"), ("subareas", "done"), ("mobile", "halted")]
    assert setup.journal.stages.postures(1)[f"{AREA}:mobile"] == "blocked"  # the previous posture, put back
    mobile_calls = [c for c in setup.run.calls if "gw-x" in c.targets]
    assert len(mobile_calls) >= 2  # applied, then rolled back on the gateway
    # the rollback blocks removable storage again on the area hosts, as the step had lifted it
    lifted, back = [c for c in setup.run.calls if c.playbook in ("recover_3_mobile", "contain_4_mobile")][-2:]
    assert (lifted.playbook, back.playbook) == ("recover_3_mobile", "contain_4_mobile")
    hosts = set(str(back.extravars.get("irm_media_targets_linux", "")).split(","))
    assert hosts == set(str(lifted.extravars["irm_media_targets_linux"]).split(",")) and "x-ws11" in hosts


def test_a_killed_step_is_resumed_from_the_posture_before_it(setup: Setup) -> None:
    class Killed(BaseException):
        pass

    rec = _recovery(setup)
    applied = rec._apply

    def killed_after_apply(spec: Any, target: Any, **kw: Any) -> Any:
        applied(spec, target, **kw)
        raise Killed  # the process dies after the hosts took the change, before the journal says done

    rec._apply = killed_after_apply  # type: ignore[method-assign, assignment]
    with pytest.raises(Killed):
        rec.run()
    assert _steps(setup.journal) == [("vectors", "running")]
    report = _recovery(setup).run()
    assert report.resumed_at == "vectors"
    steps = _steps(setup.journal)
    assert steps[0] == ("vectors", "interrupted") and ("vectors", "done") in steps and report.remaining == []


def test_the_report_of_a_whole_loop_is_typed_and_renders(setup: Setup) -> None:
    from orchestrator.aftermath import report as rep
    from orchestrator.aftermath.model import ReportData

    _recovery(setup).run()
    data = rep.Report(setup.inv, setup.journal, None).data()
    assert ReportData.model_validate_json(data.model_dump_json()) == data  # report.json reads back as the model
    assert len(data.timeline) == len(setup.journal.timeline.of(1))
    assert data.areas[AREA].milestones["recovered"] is not None and data.facts.right
    md, page = rep.markdown(data), rep.html_page(data)
    assert f"incident {data.incident.id}" in md.lower() and "<svg" in page and AREA in page


def _infection(action: str) -> Detection:
    return Detection(time=datetime.now(UTC), host="x-ws21", signature="ET EXPLOIT lab worm", action=action,
                     source_address="198.18.33.11", segment="subsidiary-x/office-2", area=AREA, network=True)


def test_a_feed_that_dies_during_a_soak_halts_and_puts_the_previous_posture_back(setup: Setup) -> None:
    source = Detections()
    rec = _recovery(setup, source=source, soak=1.0)
    applied = rec._apply

    def apply(spec: Any, target: Any, **kw: Any) -> Any:
        outcome = applied(spec, target, **kw)
        if spec.name == "vectors":
            source.dead.append("detection source suricata:/var/log/eve.json is silent (no record for 900s, "
                               "max_silence 120s): a dead feed is not an absence of infection")
        return outcome

    rec._apply = apply  # type: ignore[method-assign, assignment]
    with pytest.raises(RecoveryHalted, match="cannot vouch for no infection: detection source suricata"):
        rec.run()
    assert _steps(setup.journal) == [("vectors", "halted")]
    assert setup.journal.stages.postures(1)[f"{AREA}:hosts"] == "vectors_blocked"  # put back
    assert [c.playbook for c in setup.run.calls][-2:] == ["recover_1_vectors", "contain_3_vectors"]


def test_the_quiet_window_does_not_pass_on_a_dead_feed(setup: Setup) -> None:
    source = Detections(dead=["detection source wazuh:/var/ossec/logs/alerts/alerts.json cannot be read"])
    with pytest.raises(UserError, match=r"the quiet window cannot pass: detection source wazuh:.* cannot be read"):
        _recovery(setup, source=source).run()
    assert _steps(setup.journal) == []


def test_an_ips_blocked_alert_is_an_infection_the_quiet_window_and_the_soak_see(setup: Setup) -> None:
    source = Detections(found=[_infection("blocked")])
    with pytest.raises(UserError, match="1 detection\\(s\\) in 'subsidiary-x' in the last 60s"):
        _recovery(setup, source=source, quiet_window=60.0).run()
    source.found.clear()
    rec = _recovery(setup, source=source, soak=1.0)
    applied = rec._apply

    def apply(spec: Any, target: Any, **kw: Any) -> Any:
        outcome = applied(spec, target, **kw)
        source.found.append(_infection("blocked"))
        return outcome

    rec._apply = apply  # type: ignore[method-assign, assignment]
    with pytest.raises(RecoveryHalted, match="new infection during the soak of step 1"):
        rec.run()


def test_a_device_clock_that_disagrees_is_refused_never_trusted_for_the_soak(setup: Setup) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    setup.run.playbook_facts["recover_1_vectors"] = {"irm_applied_at": ahead}
    with pytest.raises(RecoveryHalted, match=r"disagrees with this controller.s by (59[0-9]|600)s"):
        _recovery(setup, soak=1.0).run()
    assert _steps(setup.journal) == [("vectors", "halted")]
    assert setup.journal.stages.postures(1)[f"{AREA}:hosts"] == "vectors_blocked"


def test_a_step_that_fails_on_one_host_is_rolled_back_on_all_and_journaled_as_enforced(setup: Setup) -> None:
    """x-ws12 fails recovery step 1 while the other area hosts confirmed it (their vectors reopened): the
    step is rolled back on every host, and what each host enforces is journaled, never "vectors blocked"
    with hosts open."""
    setup.run.fail[("recover_1_vectors", "x-ws12")] = "unreachable mid-step"
    blocked = dict(setup.run.live)
    with pytest.raises(UserError, match="stage vectors failed on x-ws12"):
        _recovery(setup, confirm_timeout=1).run()
    (row,) = [st for st in setup.journal.stages.of(1, AREA) if st.phase == "recovery"]
    assert row.state == "failed" and "rolled back on every target" in row.detail["reason"]
    playbooks = [c.playbook for c in setup.run.calls]
    assert playbooks.index("contain_3_vectors") > playbooks.index("recover_1_vectors")  # the rollback
    assert setup.journal.stages.postures(1)[f"{AREA}:hosts"] == "vectors_blocked"
    # every host enforces its blocked table again, and the journal says so
    hosts = setup.inv.area(AREA).hosts
    assert {h: setup.run.live[h] for h in hosts} == {h: blocked[h] for h in hosts}
    rows = setup.journal.hosts.rows(1)
    assert {h: rows[h]["fingerprint"] for h in hosts} == {h: blocked[h] for h in hosts}


def test_a_step_killed_after_it_confirmed_then_declined_leaves_what_the_journal_says(setup: Setup) -> None:
    """The kill lands after every host confirmed step 1 (vectors reopened) and before its row ended: the
    journal still says vectors blocked. The re-run reads the hosts (applies the posture before the step,
    each host comparing its live table), so declining the redone step leaves the hosts blocked, as the
    journal says."""
    class Killed(BaseException):
        pass

    blocked = dict(setup.run.live)

    def dies_after_the_devices(playbook: Any, inventory: Any, **kw: Any) -> Any:
        result = setup.run(playbook, inventory, **kw)
        if str(playbook) == "recover_1_vectors":
            raise Killed  # every host confirmed; irm dies before it writes anything
        return result

    request = RecoverRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", soak=0.0, quiet_window=0.0,
                             poll=0.01, assume_yes=True)
    rec = Recovery(request, setup.inv, setup.journal, NoDetections(), run=dies_after_the_devices,
                   probe=FakeProber(), paths=_AllOpen())
    with pytest.raises(Killed):
        rec.run()
    hosts = setup.inv.area(AREA).hosts
    assert all(setup.run.live[h] != blocked[h] for h in hosts)  # the step's change is live
    assert setup.journal.stages.postures(1)[f"{AREA}:hosts"] == "vectors_blocked"  # the journal did not see it
    again = _recovery(setup)
    again.confirm = lambda step, changes: False
    report = again.run()
    assert report.resumed_at == "vectors" and report.declined == "vectors"
    assert {h: setup.run.live[h] for h in hosts} == {h: blocked[h] for h in hosts}
    assert setup.journal.stages.postures(1)[f"{AREA}:hosts"] == "vectors_blocked"
    (row,) = [st for st in setup.journal.stages.of(1, AREA) if st.phase == "recovery"]
    assert row.state == "interrupted" and row.detail["restored"] is True and set(row.detail["found_live"]) >= set(hosts)


def test_a_dry_run_checks_every_step_in_check_mode_and_changes_nothing(setup: Setup) -> None:
    """Every step left, in order, as one check-mode play each; nothing applied on any host (the fake
    runner's live tables unchanged), no recovery step row, no event; the unmet preconditions are listed."""
    live = dict(setup.run.live)
    events = len(setup.journal.timeline.of(1))
    preview = _recovery(setup).preview()
    assert preview.unmet == []
    assert [sp.step.name for sp in preview.steps] == ["vectors", "subareas", "mobile", "lan", "internet"]
    plays = [c for c in setup.run.calls if c.playbook.startswith("recover_")]
    assert [c.playbook for c in plays] == ["recover_1_vectors", "recover_3_mobile", "recover_4_lan",
                                           "recover_5_internet"]  # step 2 changes nothing: no sub-area
    assert all(c.check for c in plays)
    assert setup.run.live == live and _steps(setup.journal) == []
    new = setup.journal.timeline.of(1)[events:]  # the dry-run stage rows' own events, marked so, nothing else
    assert new and {e["kind"] for e in new} == {"stage_started", "stage_ended"}
    assert all(e["detail"]["dry_run"] for e in new)
    # each step from the state the ones before it leave: the LAN step reopens the gateway, not the edge
    lan = next(sp for sp in preview.steps if sp.step.name == "lan")
    assert any(line.startswith("gw-x: ") for line in lan.changes) and "vectors blocked" not in " ".join(lan.changes)
    # a precondition unmet is listed, not raised
    unmet = _recovery(setup, source=Detections(found=[Detection(
        time=datetime.now(UTC), host="x-ws21", signature="Lab.Worm.IRM-A", action="detected", source_address=None,
        segment=f"{AREA}/office-2", area=AREA)]), quiet_window=60.0).preview().unmet
    assert any("detection(s) in 'subsidiary-x'" in u for u in unmet)
