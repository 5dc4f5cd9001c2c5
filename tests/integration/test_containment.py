"""`irm contain` against the real lab: proven by traffic and by the lab worm's own logs.

One scenario is built once for the module: the worm runs in subsidiary-x/office-1 while hq and
office-2 are patched (so nothing outside office-1 is infected when containment starts); as soon as
the chokepoint cuts are confirmed, hq is made vulnerable again, and office-2 after the sub-area
loop. The worms keep trying (their logs show it): any path left open would infect them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.lab import traffic
from tests.conftest import BIN, LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import (
    infected,
    matrix,
    probe,
    rulesets,
    set_patched,
    stage_states,
    wait_for,
    worm_attempts,
)

pytestmark = pytest.mark.lab

HQ = ["hq-erp", "hq-ws1", "hq-ws2"]
OFFICE_2 = ["x-ws21", "x-ws22"]
AREA_Y = ["y-ws11", "y-ws12", "y-ws21"]


@dataclass
class Scenario:
    inv: Inventory
    journal: Path
    stdout: str
    hq_open_at: datetime
    office2_open_at: datetime
    session_output: str


@pytest.fixture(scope="module")
def contained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    journal = tmp_path_factory.mktemp("contain") / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, HQ + OFFICE_2 + AREA_Y, True)  # (subsidiary-y stays patched: this test is about gw-x)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", "x-ws11", check=True)
        wait_for(lambda: len(infected(inv)) >= 3, 30, "the worm to spread inside subsidiary-x")
        # An operator's SSH session opened before containment, silent while the rules change, then
        # speaking first (no keepalives): it must survive isolation of its host's area.
        assert inv.lab is not None
        ssh_dir = Path(inv.lab.state_dir) / "ssh"
        session = subprocess.Popen(
            ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
             "-o", "IdentitiesOnly=yes", "-o", "ControlMaster=no", "-o", "ServerAliveInterval=0",
             f"root@{inv.hosts['x-ws12'].address}", "sleep 20; echo session-still-alive"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        proc = subprocess.Popen(
            [str(BIN / "irm"), "contain", "--area", "subsidiary-x", "--yes", "--journal", str(journal),
             "--quiet-window", "4", "--confirm-timeout", "30"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "200"})
        try:
            wait_for(lambda: stage_states(journal).get("isolate") == "done", 90, "the chokepoint cuts")
            hq_open_at = datetime.now(UTC)
            set_patched(inv, HQ, False)
            stdout, _ = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stdout
        try:
            session_output, _ = session.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            session.kill()
            session_output = "the session hung"
        office2_open_at = datetime.now(UTC)
        set_patched(inv, OFFICE_2, False)
        # the worms keep trying against the now vulnerable hosts
        wait_for(lambda: len(worm_attempts(inv, office2_open_at, set(OFFICE_2))) >= 10, 60,
                 "ten attempts at office-2 since it became vulnerable")
        yield Scenario(inv, journal, stdout, hq_open_at, office2_open_at, session_output)


def test_spread_stopped_and_reported(contained: Scenario) -> None:
    assert "the spread has stopped" in contained.stdout
    assert "quarantined: subsidiary-x/office-1" in contained.stdout
    states = stage_states(contained.journal)
    assert states == {"internet_cut": "done", "isolate": "done", "vectors": "done", "mobile": "done",
                      "subarea": "done"}


def test_an_ssh_session_opened_before_containment_survives_it(contained: Scenario) -> None:
    assert contained.session_output.strip() == "session-still-alive"


def test_no_host_outside_the_area_is_infected_after_the_cut(contained: Scenario) -> None:
    inv = contained.inv
    found = infected(inv)
    assert not set(HQ) & set(found), {h: found[h] for h in set(HQ) & set(found)}
    tries = worm_attempts(inv, contained.hq_open_at, set(HQ))
    assert tries, "the worms made no attempt at hq: the test proves nothing"
    assert {t["result"] for t in tries} == {"timeout"}  # dropped on the way, never answered


def test_the_worm_does_not_reach_the_other_sub_area(contained: Scenario) -> None:
    inv = contained.inv
    assert not set(OFFICE_2) & set(infected(inv))
    tries = worm_attempts(inv, contained.office2_open_at, set(OFFICE_2))
    assert tries and {t["result"] for t in tries} == {"timeout"}


def test_the_gateway_sensors_alert_on_routed_worm_traffic_until_the_cut(contained: Scenario) -> None:
    """The gateways' sensors (Suricata EVE from the packets they route) saw the worm reach out of office-1
    before containment, never a payload switched inside one segment, and nothing from subsidiary-x to
    hq once the cut was confirmed, although the worms' own logs show they kept trying."""
    import json

    inv = contained.inv
    assert inv.lab is not None
    records = [json.loads(line) for line in (Path(inv.lab.state_dir) / "sensors" / "eve.json").read_text().splitlines()]
    alerts = [r for r in records if r["event_type"] == "alert"]
    assert {r["host"] for r in records if r["event_type"] == "stats"} == {"gw-hq", "gw-x", "gw-y", "gw-z"}  # alive
    by_address = {str(h.address): h for h in inv.hosts.values()}
    x_out = [a for a in alerts if by_address[a["src_ip"]].area == "subsidiary-x"
             and by_address[a["dest_ip"]].segment != by_address[a["src_ip"]].segment]
    assert x_out, "no sensor alert from subsidiary-x: the sensors saw nothing"
    assert all(by_address[a["src_ip"]].segment != by_address[a["dest_ip"]].segment for a in alerts)
    after_cut = [a for a in x_out if by_address[a["dest_ip"]].area == "hq"
                 and datetime.strptime(a["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z") > contained.hq_open_at]
    assert after_cut == []
    assert worm_attempts(inv, contained.hq_open_at, set(HQ)), "the worms made no attempt at hq: proves nothing"


def test_identify_reads_the_sensors_and_av_logs_into_the_perimeter(contained: Scenario) -> None:
    import json

    proc = irm("identify", "--journal", str(contained.journal), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["perimeter"] == ["subsidiary-x"] and data["patient_zero"] == "x-ws11"
    assert data["vectors"] == ["tcp/4445"]  # from the sensors' alerts
    x = data["areas"][0]
    assert x["posture"] == "isolated" and data["next_commands"] == []  # open incident, area contained
    assert {s["source"]: s["readable"] for s in data["sources"]} == {
        "lab_av": True, f"suricata:{contained.inv.lab.state_dir}/sensors/eve.json": True}  # type: ignore[union-attr]
    assert [f["flow"] for f in data["impact"]["flows"]] == ["erp-orders"]


def test_traffic_after_containment(contained: Scenario) -> None:
    inv = contained.inv
    checks = {
        # the Internet and the area cannot reach each other
        ("inet-web", "x-ws11", 22): "closed", ("x-ws11", "inet-web", 80): "closed",
        ("x-lt1", "inet-web", 80): "closed",
        # the LAN cannot reach the area, the area cannot reach the LAN...
        ("hq-ws1", "x-ws11", 22): "closed", ("hq-erp", "x-ws21", 22): "closed", ("x-ws11", "hq-ws1", 22): "closed",
        # ...except the validated critical flow, which still passes
        ("x-ws11", "hq-erp", 8069): "open", ("x-ws21", "hq-erp", 8069): "open",
        ("x-ws11", "hq-erp", 22): "closed", ("x-lt1", "hq-erp", 8069): "closed",
        # sub-areas are cut from each other, the vector is blocked inside a sub-area
        ("x-ws12", "x-ws21", 22): "closed", ("x-ws12", "x-ws13", 4445): "closed",
        # the rest of the network is untouched
        ("hq-ws1", "inet-web", 80): "open", ("hq-ws1", "hq-erp", 8069): "open",
    }
    probes = [probe(inv, s, t, p) for s, t, p in checks]
    managed = traffic.management_probes(inv)
    seen = matrix(inv, probes + managed)
    got = {k: ("open" if v == "open" else "closed") for k, v in seen.items() if k in checks}
    assert got == checks
    mgmt = {(p.source, p.target, p.port): seen[(p.source, p.target, p.port)] for p in managed}
    assert len(mgmt) == len(inv.managed_hosts) and set(mgmt.values()) == {"open"}


def test_status_shows_postures_and_stages(contained: Scenario) -> None:
    import json

    data = json.loads(irm("status", "--journal", str(contained.journal), "--json", check=True).stdout)
    x = data["areas"]["subsidiary-x"]
    assert (x["posture"], x["vectors_blocked"], x["mobile_blocked"]) == ("isolated", True, True)
    segs = x["segments"]
    assert segs["subsidiary-x/office-1"]["posture"] == "quarantined"
    assert segs["subsidiary-x/office-2"]["posture"] == "connected"
    assert segs["subsidiary-x/vpn"]["posture"] == "blocked"
    assert segs["subsidiary-x/office-1"]["detections"] >= 3
    assert [s["state"] for s in x["stages"]] == ["done"] * 5
    assert data["areas"]["hq"]["posture"] == "connected"


def test_removable_storage_is_blocked_on_every_area_host_in_the_call_that_applied_its_table(
        contained: Scenario) -> None:
    import json

    inv, area = contained.inv, contained.inv.area("subsidiary-x")
    for name in area.hosts:  # the lab's modprobe directory is the host's state directory
        rule = Path(inv.hosts[name].state_dir) / "irm-usb-storage.conf"
        assert "install usb-storage /bin/false" in rule.read_text().splitlines(), name
    for name in HQ:  # never outside the contained area
        assert not (Path(inv.hosts[name].state_dir) / "irm-usb-storage.conf").exists(), name
    with closing(Journal.reader(contained.journal)) as j:
        (vectors,) = [st for st in j.stages.of(1, "subsidiary-x") if st.name == "vectors"]
    events = [json.loads(line) for line in Path(vectors.detail["job_events"]).read_text().splitlines()]
    results = [(e["host"], e.get("task")) for e in events
               if e["event"] in ("runner_on_ok", "runner_on_failed") and e.get("host")]
    # one task per host: the table, its confirm and removable storage in one irm_nft task (in the play, or
    # the same sequence over the warm path once it is prepared)
    assert sorted(h for h, _ in results) == sorted(area.hosts), results
    assert len({t for _, t in results}) == 1 and vectors.detail["via"] in ("warm", "ansible-playbook"), results


def test_rerun_changes_nothing(contained: Scenario) -> None:
    inv = contained.inv
    before_rules, before_matrix = rulesets(inv), matrix(inv)
    again = irm("contain", "--area", "subsidiary-x", "--yes", "--journal", str(contained.journal),
                "--quiet-window", "2", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no change" in again.stdout
    assert rulesets(inv) == before_rules
    assert matrix(inv) == before_matrix
