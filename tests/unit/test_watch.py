"""irm watch without the lab: the signed policy (real ssh-keygen signatures), the trigger, and the watcher
driving containment through the fake runner: what it cuts, what it refuses (limits, exclusions, pause,
forged alerts), and that the journal, not memory, decides after a restart."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.detection import Detection
from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Approver, Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.model import DetectionSourceSpec
from orchestrator.core.journal import Journal
from orchestrator.core.sshsig import sign as ssh_sign
from orchestrator.watch import policy as pol
from orchestrator.watch.trigger import Seen, triggered
from orchestrator.watch.watcher import Watcher, WatchSettings
from tests.conftest import LAB_INVENTORY, ROOT, irm
from tests.fakes.runner import FakeProber, FakeRunner, without_channels

NOW = datetime.now(UTC)
INV_HOSTS = {a.name: list(a.hosts) for a in load_inventory(LAB_INVENTORY).areas.values()}
POLICY: dict[str, Any] = {
    "name": "test", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
    "approvers_required": 2, "areas": ["subsidiary-x", "subsidiary-y"], "through": "isolate",
    "trigger": {"within_seconds": 60, "min_detections": 2, "min_sources": 1, "trusted_sources": ["suricata"]},
    "limits": {"max_areas_per_hour": 1}, "incident": {"worm": "W", "vectors": ["tcp/4445"]},
}


def _key(tmp: Path, name: str) -> Path:
    key = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Inventory, Path, Path]:
    ciso, cio = _key(tmp_path, "ciso"), _key(tmp_path, "cio")
    inv = without_channels(load_inventory(LAB_INVENTORY)).model_copy(update={"approvers": (
        Approver(name="ciso", role="CISO", key=(tmp_path / "ciso.pub").read_text().strip()),
        Approver(name="cio", role="CIO", key=(tmp_path / "cio.pub").read_text().strip()))})
    return inv, ciso, cio


def _write(tmp: Path, **change: Any) -> Path:
    path = tmp / "policy.yml"
    path.write_text(yaml.safe_dump({**POLICY, **change}))
    return path


def test_a_policy_needs_its_approvers_and_is_void_once_changed(tmp_path: Path,
                                                               keys: tuple[Inventory, Path, Path]) -> None:
    inv, ciso, cio = keys
    path = _write(tmp_path)
    with pytest.raises(UserError, match=r"signed by no listed approver .* 2 required"):
        pol.verified(path, inv)
    pol.sign(path, inv, ciso)
    with pytest.raises(UserError, match="signed by ciso over its current content; 2 required"):
        pol.verified(path, inv)
    pol.sign(path, inv, cio)
    policy, signers, _ = pol.verified(path, inv)
    assert sorted(signers) == ["cio", "ciso"] and policy.through_number == 2
    path.write_text(path.read_text().replace("max_areas_per_hour: 1", "max_areas_per_hour: 100"))
    with pytest.raises(UserError, match=r"signed by no listed approver .*\(the file changed since it was signed\)"):
        pol.verified(path, inv)


def test_an_approval_signature_is_not_a_policy_signature(tmp_path: Path, keys: tuple[Inventory, Path, Path]) -> None:
    inv, ciso, _ = keys
    path = _write(tmp_path, approvers_required=1)
    text = path.read_text()
    rows = [{"approver": "ciso", "signature": ssh_sign(text, ciso, "irm-approval")}]  # another namespace
    pol.sig_path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match="signed by no listed approver"):
        pol.verified(path, inv)


def test_an_expired_or_unsafe_policy_is_refused_naming_why(tmp_path: Path, keys: tuple[Inventory, Path, Path]) -> None:
    inv = keys[0]
    path = _write(tmp_path, valid_until="2026-06-01T00:00:00Z", areas=["subsidiary-x", "nowhere"],
                  approvers_required=3)
    with pytest.raises(UserError) as err:
        pol.verified(path, inv)
    text = str(err.value)
    assert "expired at 2026-06-01" in text and "'nowhere' is not an area" in text
    assert "approvers_required 3, but" in text
    never = inv.model_copy(update={"areas": {**inv.areas, "subsidiary-x": inv.areas["subsidiary-x"].model_copy(
        update={"auto_contain": False})}})
    assert any("irm_auto_contain: never" in p for p in pol.problems(pol.load(_write(tmp_path))[0], never, "p"))


@pytest.mark.parametrize(("change", "message"), [
    ({"through": "subarea"}, "is not a containment stage"),
    ({"valid_from": "2026-01-01T00:00:00"}, "give a time zone"),
    ({"valid_until": "2025-01-01T00:00:00Z"}, "valid_until must come after valid_from"),
    ({"surprise": 1}, "surprise"),
    ({"limits": {"max_areas_per_hour": 0}}, "greater than or equal to 1"),
])
def test_a_bad_policy_file_is_one_line_naming_the_key(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        pol.load(_write(tmp_path, **change))


def _det(area: str, segment: str, seconds_ago: float = 1, host: str = "x-ws11", action: str = "detected") -> Detection:
    return Detection(time=NOW - timedelta(seconds=seconds_ago), host=host, signature="Lab.Worm", action=action,
                     source_address=None, segment=segment, area=area)


def test_the_trigger_counts_per_sub_area_within_the_window() -> None:
    policy = pol.ContainmentPolicy.model_validate(POLICY)
    office = "subsidiary-x/office"
    one = [Seen(_det("subsidiary-x", office), "lab_av", "lab_av")]
    assert triggered(policy, one, NOW) == {}
    two = [*one, Seen(_det("subsidiary-x", office, 5), "lab_av", "lab_av")]
    assert "2 detection(s) from lab_av" in triggered(policy, two, NOW)["subsidiary-x"]
    old = [*one, Seen(_det("subsidiary-x", office, 120), "lab_av", "lab_av")]  # outside the minute
    assert triggered(policy, old, NOW) == {}
    split = [*one, Seen(_det("subsidiary-x", "subsidiary-x/plant"), "lab_av", "lab_av")]  # two sub-areas
    assert triggered(policy, split, NOW) == {}
    trusted = [Seen(_det("subsidiary-y", "subsidiary-y/office"), "suricata:/x/eve.json", "suricata")]
    assert "trusted source" in triggered(policy, trusted, NOW)["subsidiary-y"]
    cleaned = [Seen(_det("subsidiary-x", office, action="cleaned"), "lab_av", "lab_av")] * 5
    assert triggered(policy, cleaned, NOW) == {}
    elsewhere = [Seen(_det("hq", "hq/office"), "suricata", "suricata")] * 50  # an area the policy does not name
    assert triggered(policy, elsewhere, NOW) == {}


class _Source:
    def __init__(self) -> None:
        self.items: list[Detection] = []
        self.down: list[str] = []

    def detections(self, since: datetime) -> list[Detection]:
        return [d for d in self.items if d.time >= since]

    def problems(self, now: datetime) -> list[str]:
        return []


class _Sources:
    """``identification.sources.Sources``' shape: the specs and (spec, source) pairs."""

    def __init__(self, src: _Source) -> None:
        self.specs = (DetectionSourceSpec(kind="suricata", path="/nonexistent/eve.json"),)
        self.sources = [(self.specs[0], src)]

    def detections(self, since: datetime) -> list[Detection]:
        return self.sources[0][1].detections(since)

    def problems(self, now: datetime) -> list[str]:
        return list(self.sources[0][1].down)


def _watcher(tmp_path: Path, j: Journal, src: _Source, run: FakeRunner, dry_run: bool = False,
             **policy: Any) -> Watcher:
    inv = without_channels(load_inventory(LAB_INVENTORY))
    chosen = pol.ContainmentPolicy.model_validate({**POLICY, **policy})
    return Watcher(inv, j, chosen, "sha", ["ciso", "cio"], _Sources(src),  # type: ignore[arg-type]
                   WatchSettings(LAB_INVENTORY, "watcher", dry_run, confirm_timeout=0), run_playbook=run,
                   probe_management=FakeProber(), clock=lambda: NOW)


def test_the_watcher_cuts_a_triggering_area_once_through_isolation(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    w = _watcher(tmp_path, j, src, run)
    assert w.step() == [] and run.calls == []
    src.items += [_det("subsidiary-x", "subsidiary-x/office"), _det("subsidiary-x", "subsidiary-x/office", 2)]
    assert w.step() == ["subsidiary-x"]
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate"]  # through isolate, no vectors
    (inc,) = j.incidents.all()
    assert inc.spec.worm == "W" and [str(v) for v in inc.spec.vectors] == ["tcp/4445"]
    assert j.stages.postures(inc.id)["subsidiary-x"] == "isolated"
    fired = [e for e in j.timeline.of(inc.id) if e["kind"] == "watch_triggered"]
    assert len(fired) == 1 and fired[0]["detail"]["signers"] == ["ciso", "cio"]
    assert fired[0]["detail"]["opened_incident"]
    assert w.step() == [] and len(run.calls) == 2  # the journal says it holds: nothing again
    again = _watcher(tmp_path, j, src, run)  # a restarted watcher reads the same journal
    assert again.step() == [] and len(run.calls) == 2


def test_the_hourly_limit_holds_across_restarts_and_is_journaled(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    src.items += [_det("subsidiary-x", "subsidiary-x/office", s) for s in (1, 2)]
    src.items += [_det("subsidiary-y", "subsidiary-y/office", s, host="y-ws11") for s in (1, 2)]
    assert _watcher(tmp_path, j, src, run).step() == ["subsidiary-x"]  # one area per hour
    assert _watcher(tmp_path, j, src, run).step() == []
    refused = [e for e in j.timeline.of(1) if e["kind"] == "watch_refused"]
    assert refused and refused[0]["detail"]["areas"] == ["subsidiary-y"]
    assert "limit of 1" in refused[0]["detail"]["reason"]
    assert {c.targets[0] for c in run.calls} == {"edge-fw", "gw-x"}  # nothing of subsidiary-y was touched


def test_a_pause_holds_every_action_and_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    from orchestrator.core.events import EventKind

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    src.items += [_det("subsidiary-x", "subsidiary-x/office", s) for s in (1, 2)]
    j.timeline.add(None, EventKind.WATCH_PAUSED, "op", None, reason="drill")
    assert _watcher(tmp_path, j, src, run).step() == [] and run.calls == []
    held = j.timeline.of_kinds((EventKind.WATCH_REFUSED,))
    assert held and "paused: drill" in held[0]["detail"]["reason"]
    j.timeline.add(None, EventKind.WATCH_RESUMED, "op", None, reason="drill over")
    dry = _watcher(tmp_path, j, src, run, dry_run=True)
    assert dry.step() == ["subsidiary-x"] and run.calls == [] and dry.step() == []
    (fired,) = j.timeline.of_kinds((EventKind.WATCH_TRIGGERED,))
    assert fired["detail"]["dry_run"] is True
    assert fired["incident_id"] is not None and j.stages.postures(fired["incident_id"]) == {}


def test_a_policy_that_expires_while_watching_acts_no_more(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    src.items += [_det("subsidiary-x", "subsidiary-x/office", s) for s in (1, 2)]
    ended = (NOW - timedelta(seconds=1)).isoformat()
    assert _watcher(tmp_path, j, src, run, valid_until=ended).step() == [] and run.calls == []
    from orchestrator.core.events import EventKind

    (held,) = j.timeline.of_kinds((EventKind.WATCH_REFUSED,))
    assert "expired" in held["detail"]["reason"]


def test_a_flood_of_forged_alerts_cuts_only_what_the_policy_allows(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    for area in ("hq", "subsidiary-z", "subsidiary-x", "subsidiary-y"):  # z and hq are not in the policy
        src.items += [_det(area, f"{area}/office", s / 10) for s in range(1, 200)]
    w = _watcher(tmp_path, j, src, run)
    assert w.step() == ["subsidiary-x"]  # the policy's areas only, and at most its hourly limit
    assert {t for c in run.calls for t in c.targets} == {"edge-fw", "gw-x"}  # never the core or another gateway
    assert [e["detail"]["areas"] for e in j.timeline.of(1) if e["kind"] == "watch_refused"] == [["subsidiary-y"]]


@pytest.fixture()
def signed_inventory(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A copy of the lab's inventory whose approvers' keys are made here; the lab's policy beside it."""
    import shutil

    inv_dir = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "lab", inv_dir)
    keys = {name: _key(tmp_path, name) for name in ("ciso", "it-director")}
    all_vars = inv_dir / "group_vars" / "all.yml"
    text = all_vars.read_text()
    for name in keys:
        pub = (tmp_path / f"{name}.pub").read_text().strip()
        text = text.replace(f'key_file: "{{{{ irm_lab_state_dir }}}}/approvers/{name}.pub"', f'key: "{pub}"')
    all_vars.write_text(text)
    policy = tmp_path / "containment-policy.yml"
    shutil.copy(inv_dir / "containment-policy.yml", policy)
    return inv_dir, policy, keys["ciso"], keys["it-director"]


def test_the_cli_signs_checks_validates_and_installs_a_policy(tmp_path: Path,
                                                              signed_inventory: tuple[Path, Path, Path, Path]) -> None:
    inv_dir, policy, ciso, director = signed_inventory
    unsigned = irm("policy", "check", str(policy), "-i", str(inv_dir))
    assert unsigned.returncode == 2 and "signed by no listed approver" in unsigned.stderr
    assert "Traceback" not in unsigned.stderr
    refused = irm("validate", "-i", str(inv_dir), "--policy", str(policy))
    assert refused.returncode == 2 and "signed by no listed approver" in refused.stderr, refused.stderr
    units = tmp_path / "units"
    units.mkdir()
    install = irm("watch", "install", "--policy", str(policy), "-i", str(inv_dir), "--unit-dir", str(units))
    assert install.returncode == 2 and not list(units.iterdir())  # an unsigned policy installs nothing
    for key in (ciso, director):
        irm("policy", "sign", str(policy), "--key", str(key), "-i", str(inv_dir), check=True)
    checked = irm("policy", "check", str(policy), "-i", str(inv_dir), check=True)
    assert "signed by ciso, it-director" in checked.stdout
    irm("watch", "install", "--policy", str(policy), "-i", str(inv_dir), "--unit-dir", str(units), check=True)
    unit = (units / "irm-watch.service").read_text()
    assert f"watch --policy {policy}" in unit and "Restart=on-failure" in unit
    again = irm("watch", "install", "--policy", str(policy), "-i", str(inv_dir), "--unit-dir", str(units))
    assert again.returncode == 2 and "give --force" in again.stderr
    policy.write_text(policy.read_text().replace("max_areas_per_hour: 3", "max_areas_per_hour: 30"))
    changed = irm("watch", "--policy", str(policy), "-i", str(inv_dir), "--journal", str(tmp_path / "j.db"),
                  "--for", "1")
    assert changed.returncode == 2 and "changed since it was signed" in changed.stderr
    assert not (tmp_path / "j.db").exists()  # refused before anything is journaled


def test_irm_watch_without_a_policy_is_one_line() -> None:
    proc = irm("watch")
    assert proc.returncode == 2 and "give --policy FILE" in proc.stderr and "Traceback" not in proc.stderr


def test_a_source_that_goes_silent_is_said_once_and_the_watcher_goes_on(tmp_path: Path) -> None:
    from orchestrator.core.events import EventKind

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    w = _watcher(tmp_path, j, src, run)
    src.down = ["detection source suricata:/x silent for 300s (more than its max_silence 120s)"]
    assert w.step() == [] and w.step() == []
    src.items += [_det("subsidiary-x", "subsidiary-x/office", s) for s in (1, 2)]  # the others still count
    assert w.step() == ["subsidiary-x"]
    src.down = []
    w.step()
    said = [(e["detail"]["cleared"],
             e["detail"]["problem"][:24]) for e in j.timeline.of_kinds((EventKind.WATCH_SOURCE,))]
    assert said == [(False, "detection source suricat"), (True, "detection source suricat")]


def test_irm_status_says_what_the_watcher_did_and_whether_it_is_paused(tmp_path: Path) -> None:
    from orchestrator.core.events import EventKind
    from orchestrator.identification.status import watch_state

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    assert watch_state(j) is None
    j.timeline.add(None, EventKind.WATCH_STARTED, "op", None, policy="test", path="p", sha256="s", signers=["ciso",
                                                                                                            "cio"],
                   areas=["subsidiary-x"], through="isolate", dry_run=False)
    src.items += [_det("subsidiary-x", "subsidiary-x/office", s) for s in (1, 2)]
    _watcher(tmp_path, j, src, run).step()
    j.timeline.add(None, EventKind.WATCH_PAUSED, "op", None, reason="drill")
    state = watch_state(j)
    assert state is not None and state["paused"] == "drill" and state["signers"] == ["ciso", "cio"]
    assert [a["areas"] for a in state["actions"]] == [["subsidiary-x"]]


def test_keeping_warm_reaches_the_chokepoints_and_says_when_one_is_down(tmp_path: Path) -> None:
    from orchestrator.core import stream

    j, src = Journal(tmp_path / "j.db"), _Source()
    run = FakeRunner(fail={("reach", "gw-y"): "timed out"})
    w = _watcher(tmp_path, j, src, run)
    said: list[str] = []
    w.events.subscribe(lambda e: said.append(e.text) if isinstance(e, stream.Notice) else None)
    w.keep_warm()
    w.keep_warm()
    assert run.calls[0].playbook == "reach" and run.calls[0].targets == ["edge-fw", "gw-x", "gw-y"]
    assert said == ["chokepoint gw-y does not answer on its management path: irm watch could not cut there"]
    run.fail.clear()
    w.keep_warm()
    assert said[-1] == "chokepoint gw-y answers again"


def test_a_policy_s_worm_label_is_checked_as_the_incident_it_opens(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"incident\.worm"):
        pol.load(_write(tmp_path, incident={"worm": "W\x1b[2J", "vectors": ["tcp/4445"]}))


def test_a_hostile_alert_signature_never_keeps_the_cut_from_happening(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    src.items += [Detection(time=NOW - timedelta(seconds=s), host="x-ws11", signature="S" * 5000,
                            action="detected", source_address=None, segment="subsidiary-x/office",
                            area="subsidiary-x") for s in (1, 2)]
    assert _watcher(tmp_path, j, src, run).step() == ["subsidiary-x"]
    assert j.incidents.all()[0].spec.signatures == []  # the text the incident refuses is left out


def _drop(segment: str, packets: int = 3) -> Any:
    from orchestrator.core.detection import Drop

    d = Detection(time=NOW, host="gw-x", signature=f"irm boundary gw-x dropped {packets} attempt(s) from {segment}",
                  action="blocked", source_address=None, segment=segment, area=segment.split("/")[0], network=True)
    return Drop(d, packets, packets)


def test_with_quarantine_the_watcher_runs_the_sub_area_loop_on_every_source_and_the_boundaries(tmp_path: Path) -> None:
    from orchestrator.containment.table import SUBAREA_LOOP
    from orchestrator.core.events import EventKind

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    w = _watcher(tmp_path, j, src, run, quarantine=True,
                 trigger={**POLICY["trigger"], "trusted_sources": ["suricata", "boundary"]})
    one, two = "subsidiary-x/office-1", "subsidiary-x/office-2"
    w.drops.put(_drop(two))  # the boundary of an area irm does not hold yet: a detection, no quarantine
    src.items += [_det("subsidiary-x", one, s) for s in (1, 2)]
    assert w.step() == ["subsidiary-x"]
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate"]
    # the area first (its own trigger), then at the next evaluation the sub-areas that crossed it: office-1
    # by its two detections, office-2 by the boundary, a source the policy trusts
    assert w.step() == []
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate", SUBAREA_LOOP.playbook]
    (inc,) = j.incidents.all()
    (q,) = j.timeline.of_kinds((EventKind.WATCH_QUARANTINED,))
    assert q["detail"]["sub_areas"] == {"subsidiary-x": [one, two]} and q["detail"]["signers"] == ["ciso", "cio"]
    assert "trusted source boundary" in q["detail"]["reasons"][two]
    (dropped,) = j.timeline.of_kinds((EventKind.BOUNDARY_DROPS,))
    assert (dropped["area"], dropped["detail"]["segment"], dropped["detail"]["packets"]) == ("subsidiary-x", two, 3)
    assert sorted(s for s in j.stages.postures(inc.id) if "/" in s) == [one, two]
    assert w.step() == [] and len(run.calls) == 3  # held: nothing again
    # a mobile segment is never a sub-area to quarantine (the mobile stage blocks it whole), and an area the
    # policy does not name is never touched, whatever its boundary says
    w.drops.put(_drop("subsidiary-x/vpn"))
    w.drops.put(_drop("hq/office"))
    assert w.step() == [] and len(run.calls) == 3


def test_a_quarantine_waits_for_its_area_and_holds_under_a_pause(tmp_path: Path) -> None:
    from orchestrator.core.events import EventKind

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    j.timeline.add(None, EventKind.WATCH_PAUSED, "op", None, reason="drill")
    src.items += [_det("subsidiary-x", "subsidiary-x/office-1", s) for s in (1, 2)]
    w = _watcher(tmp_path, j, src, run, quarantine=True)
    assert w.step() == [] and run.calls == []  # paused: neither the area nor its sub-area
    assert not j.timeline.of_kinds((EventKind.WATCH_QUARANTINED,))
    without = _watcher(tmp_path, j, src, run)  # no quarantine in the policy: never a sub-area
    j.timeline.add(None, EventKind.WATCH_RESUMED, "op", None, reason="drill over")
    assert without.step() == ["subsidiary-x"]
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate"]


def test_quarantine_needs_isolation_first() -> None:
    with pytest.raises(ValueError, match="quarantined at its area's gateway, after isolation"):
        pol.ContainmentPolicy.model_validate({**POLICY, "through": "internet_cut", "quarantine": True})


def test_every_triggering_area_is_cut_off_before_any_gets_its_host_level_stages(tmp_path: Path) -> None:
    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    w = _watcher(tmp_path, j, src, run, through="vectors", limits={"max_areas_per_hour": 3},
                 areas=["subsidiary-x", "hq"])
    src.items += [_det("subsidiary-x", "subsidiary-x/office-1", s) for s in (1, 2)]
    assert w.step() == ["subsidiary-x"]
    assert run.playbooks() == ["contain_1_internet_cut", "contain_2_isolate"]  # the cut only
    # hq starts detecting while subsidiary-x still waits for its vectors stage: hq is cut off first
    src.items += [_det("hq", "hq/office", s, host="hq-ws1") for s in (1, 2)]
    assert w.step() == ["hq"]
    assert run.playbooks()[2:] == ["contain_1_internet_cut", "contain_2_isolate"]
    assert [c.targets for c in run.calls[2:]] == [["edge-fw"], ["gw-hq"]]
    # then, with no area waiting for its cut, both get the policy's later stages, in one run (the cut, held,
    # is not run again)
    assert w.step() == []
    assert run.playbooks()[4:] == ["contain_3_vectors"]
    hosts = set(run.calls[-1].targets)
    assert hosts == {*INV_HOSTS["subsidiary-x"], *INV_HOSTS["hq"]}
    (inc,) = j.incidents.all()
    assert w.holds(inc, "subsidiary-x") and w.holds(inc, "hq")
    calls = len(run.calls)
    assert w.step() == [] and len(run.calls) == calls  # held: nothing again


def test_the_sensor_thread_outlives_a_reading_that_fails(tmp_path: Path) -> None:
    import sqlite3

    j, run, src = Journal(tmp_path / "j.db"), FakeRunner(), _Source()
    w = _watcher(tmp_path, j, src, run)
    said: list[str] = []
    w.events.say = said.append  # type: ignore[method-assign,assignment]
    readings: list[Any] = [sqlite3.OperationalError("database is locked"), [_drop("subsidiary-x/office-1")]]

    class Sensor:
        def poll(self, skip: Any = ()) -> list[Any]:
            item = readings.pop(0) if readings else []
            if isinstance(item, Exception):
                raise item
            return item

        def problems(self, now: datetime) -> list[str]:
            return []

    w.sensor = Sensor()
    w.settings = WatchSettings(LAB_INVENTORY, "watcher", sensor_interval=0.01)
    w._sense_loop(lambda: not readings and not w.drops.empty())
    assert "could not be read (OperationalError: database is locked)" in said[0]
    assert w.drops.get_nowait().detection.segment == "subsidiary-x/office-1"  # the next reading still came
