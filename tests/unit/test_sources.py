"""Suricata EVE alerts as detections: the documented EVE fields (event_type, timestamp, src_ip,
alert.signature_id, alert.severity, alert.action), mapped to the inventory's hosts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from orchestrator.identification.sources import SuricataEveSource, WazuhAlertsSource
from tests.conftest import LAB_INVENTORY


def _alert(ts: str, src: str, sid: int = 2024218, severity: int = 1, action: str = "allowed") -> dict[str, object]:
    return {"timestamp": ts, "flow_id": 1, "in_iface": "br0", "event_type": "alert", "src_ip": src,
            "src_port": 40000, "dest_ip": "198.18.33.11", "dest_port": 4445, "proto": "TCP",
            "alert": {"action": action, "gid": 1, "signature_id": sid, "rev": 1,
                      "signature": "ET EXPLOIT lab worm propagation", "category": "A Network Trojan was detected",
                      "severity": severity}}


def test_eve_alerts_become_detections_of_the_inventory_hosts(tmp_path: Path) -> None:
    inv = load_inventory(LAB_INVENTORY)
    eve = tmp_path / "eve.json"
    lines = [
        json.dumps(_alert("2026-11-27T08:00:01.000000+0000", "198.18.32.11")),
        json.dumps({"timestamp": "2026-11-27T08:00:02.000000+0000", "event_type": "flow", "src_ip": "198.18.32.12"}),
        json.dumps(_alert("2026-11-27T09:00:03.000000+0100", "198.18.48.11", action="blocked")),
        json.dumps(_alert("2026-11-27T08:00:04.000000+0000", "198.18.32.13", sid=1)),  # another signature
        json.dumps(_alert("2026-11-27T08:00:05.000000+0000", "198.18.32.12", severity=3)),  # not severe enough
        json.dumps(_alert("2026-11-27T08:00:06.000000+0000", "198.19.0.99")),  # an address irm does not know
        "{torn",
        json.dumps({"event_type": "alert", "timestamp": "2026-11-27T08:00:07+00:00"}),  # no alert, no src_ip
    ]
    eve.write_text("\n".join(lines) + "\n")
    source = SuricataEveSource(inv, eve, signature_ids=frozenset({2024218}), max_severity=2)
    found = source.detections(datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    assert [(d.host, d.area, d.segment, d.action, d.time.isoformat()) for d in found] == [
        ("x-ws11", "subsidiary-x", "subsidiary-x/office-1", "detected", "2026-11-27T08:00:01+00:00"),
        ("y-ws11", "subsidiary-y", "subsidiary-y/office", "blocked", "2026-11-27T08:00:03+00:00")]
    assert source.unmapped == {"198.19.0.99": 1} and source.skipped == 2
    # only what happened at or after `since`
    assert [d.host for d in source.detections(datetime(2026, 11, 27, 8, 0, 2, tzinfo=UTC))] == ["y-ws11"]
    # an unreadable log yields nothing, no error
    assert SuricataEveSource(inv, tmp_path / "missing.json").detections(datetime(2026, 1, 1, tzinfo=UTC)) == []


def _wazuh(ts: str, agent: dict[str, str], level: int = 12, rule_id: str = "100200",
           srcip: str | None = "198.18.32.11") -> dict[str, object]:
    return {"timestamp": ts, "rule": {"level": level, "description": "Lab worm propagation attempt", "id": rule_id,
                                      "groups": ["ids", "worm"]},
            "agent": agent, "manager": {"name": "wazuh-manager"}, "id": "1732694401.1234",
            "decoder": {"name": "json"}, "data": {"srcip": srcip} if srcip else {}, "location": "/var/log/av.log"}


def test_wazuh_alerts_become_detections_of_the_reporting_agents(tmp_path: Path) -> None:
    inv = load_inventory(LAB_INVENTORY)
    alerts = tmp_path / "alerts.json"
    lines = [
        json.dumps(_wazuh("2026-11-27T08:00:01.000+0000", {"id": "001", "name": "x-ws12", "ip": "198.18.32.12"})),
        json.dumps(_wazuh("2026-11-27T08:00:02.000+0000", {"id": "002", "name": "WS-UNKNOWN", "ip": "198.18.48.12"},
                          srcip=None)),  # placed by its address
        json.dumps(_wazuh("2026-11-27T08:00:03.000+0000", {"id": "003", "name": "x-ws13", "ip": "198.18.32.13"},
                          level=5)),  # below the threshold
        json.dumps(_wazuh("2026-11-27T08:00:04.000+0000", {"id": "004", "name": "laptop-9", "ip": "198.19.0.99"})),
        json.dumps({"timestamp": "2026-11-27T08:00:05+00:00", "agent": {"name": "x-ws11"}}),  # no rule
    ]
    alerts.write_text("\n".join(lines) + "\n")
    source = WazuhAlertsSource(inv, alerts)
    found = source.detections(datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    assert [(d.host, d.area, d.source_address, d.signature) for d in found] == [
        ("x-ws12", "subsidiary-x", "198.18.32.11", "Lab worm propagation attempt"),
        ("y-ws12", "subsidiary-y", None, "Lab worm propagation attempt")]
    assert source.unmapped == {"laptop-9": 1} and source.skipped == 1
    assert WazuhAlertsSource(inv, alerts, rule_ids=frozenset({"999"})).detections(
        datetime(2026, 11, 27, 7, 0, tzinfo=UTC)) == []


def _winlogbeat(ts: str, event_id: int, computer: str, severity: str = "Severe", threat_id: str = "2147735505",
                action: str | None = None) -> dict[str, object]:
    data = {"Product Name": "Microsoft Defender Antivirus", "Threat ID": threat_id,
            "Threat Name": "Trojan:Win32/LabWorm.A", "Severity ID": "", "Severity Name": severity,
            "Category Name": "Trojan", "Path": "file:_C:\\Users\\Public\\w.exe", "Detection User": "CORP\\alice"}
    if action:
        data["Action Name"] = action
    return {"@timestamp": ts, "event": {"code": str(event_id), "provider": "Microsoft-Windows-Windows Defender"},
            "winlog": {"channel": "Microsoft-Windows-Windows Defender/Operational", "event_id": str(event_id),
                       "computer_name": computer, "event_data": data}}


def test_defender_events_from_winlogbeat_and_from_powershell(tmp_path: Path) -> None:
    from orchestrator.identification.sources import DefenderEventsSource

    inv = load_inventory(LAB_INVENTORY)
    beats = tmp_path / "defender.ndjson"
    beats.write_text("\n".join(json.dumps(r) for r in [
        _winlogbeat("2026-11-27T08:00:01.000Z", 1116, "X-WS11.corp.example"),
        _winlogbeat("2026-11-27T08:00:02.000Z", 1117, "x-ws11.corp.example", action="Quarantine"),
        _winlogbeat("2026-11-27T08:00:03.000Z", 5007, "x-ws12"),  # a configuration change, not a detection
        _winlogbeat("2026-11-27T08:00:04.000Z", 1116, "x-ws13", severity="Low"),  # below the threshold
        _winlogbeat("2026-11-27T08:00:05.000Z", 1116, "PRINTER-7"),  # not in the inventory
    ]) + "\n")
    source = DefenderEventsSource(inv, beats, min_severity=4)
    found = source.detections(datetime(2026, 11, 27, tzinfo=UTC))
    assert [(d.host, d.action, d.signature, d.source_address) for d in found] == [
        ("x-ws11", "detected", "Trojan:Win32/LabWorm.A", None),
        ("x-ws11", "quarantine", "Trojan:Win32/LabWorm.A", None)]
    assert source.unmapped == {"PRINTER-7": 1}
    assert source.newest == datetime(2026, 11, 27, 8, 0, 5, tzinfo=UTC)
    other_threat = DefenderEventsSource(inv, beats, threat_ids=frozenset({1}))
    assert other_threat.detections(datetime(2026, 11, 27, tzinfo=UTC)) == []

    # PowerShell 5: Get-WinEvent ... | Select-Object Id, MachineName, TimeCreated, Message | ConvertTo-Json
    message = ("Microsoft Defender Antivirus has detected malware or other potentially unwanted software.\r\n"
               " For more information please see the following:\r\n\tName: Trojan:Win32/LabWorm.A\r\n"
               "\tID: 2147735505\r\n\tSeverity: Severe\r\n\tCategory: Trojan\r\n\tPath: file:_C:\\w.exe\r\n")
    ps = tmp_path / "defender.json"
    ps.write_text(json.dumps([
        {"Id": 1116, "MachineName": "y-ws21.corp.example", "TimeCreated": "/Date(1795766400000)/", "Message": message},
        {"Id": 1116, "MachineName": "y-ws12", "TimeCreated": "2026-11-27T09:00:00+01:00",
         "Message": message.replace("Severe", "Moderate")},
    ], indent=4))
    found = DefenderEventsSource(inv, ps, min_severity=4).detections(datetime(2026, 1, 1, tzinfo=UTC))
    assert [(d.host, d.area, d.segment, d.time.isoformat()) for d in found] == [
        ("y-ws21", "subsidiary-y", "subsidiary-y/plant", "2026-11-27T08:00:00+00:00")]
    assert [d.host for d in DefenderEventsSource(inv, ps).detections(datetime(2026, 1, 1, tzinfo=UTC))] == \
        ["y-ws21", "y-ws12"]


def test_sources_combine_and_filter_by_area_and_report_their_health(tmp_path: Path) -> None:
    from orchestrator.core.inventory.model import DetectionSourceSpec
    from orchestrator.identification.sources import Sources

    inv = load_inventory(LAB_INVENTORY)
    eve, wazuh = tmp_path / "eve.json", tmp_path / "alerts.json"
    eve.write_text(json.dumps(_alert("2026-11-27T08:00:02+00:00", "198.18.48.11")) + "\n{torn\n")
    wazuh.write_text(json.dumps(_wazuh("2026-11-27T08:00:01+00:00", {"name": "x-ws12"})) + "\n")
    specs = [DetectionSourceSpec(kind="suricata", path=str(eve)), DetectionSourceSpec(kind="wazuh", path=str(wazuh)),
             DetectionSourceSpec(kind="defender", path=str(tmp_path / "missing.json"))]
    both = Sources(inv, specs=specs)
    assert [d.host for d in both.detections(datetime(2026, 11, 27, tzinfo=UTC))] == ["x-ws12", "y-ws11"]
    assert both.skipped == {f"suricata:{eve}": 1}
    health = {h.label.split(":")[0]: h for h in both.health()}
    assert health["suricata"].readable and health["suricata"].newest == datetime(2026, 11, 27, 8, 0, 2, tzinfo=UTC)
    assert not health["defender"].readable and health["defender"].newest is None
    only_y = Sources(inv, "subsidiary-y", specs)
    assert [d.host for d in only_y.detections(datetime(2026, 11, 27, tzinfo=UTC))] == ["y-ws11"]
    # nothing given: the inventory's sources
    assert [s.label for s in Sources(inv).specs] == [s.label for s in inv.detection_sources]


@pytest.mark.parametrize(("text", "message"), [
    ("snort:/tmp/x", "unknown kind 'snort'"),
    ("suricata", "give the log's path as suricata:PATH"),
    ("suricata:/nonexistent/eve.json", "/nonexistent/eve.json is not a readable file"),
    ("lab_av:/tmp/x", "lab_av takes no path"),
])
def test_a_bad_source_argument_is_named(text: str, message: str) -> None:
    from orchestrator.core.errors import UserError
    from orchestrator.identification.sources import parse_source

    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        parse_source(text)


def test_source_argument(tmp_path: Path) -> None:
    from orchestrator.identification.sources import parse_source

    (tmp_path / "eve.json").write_text("")
    assert parse_source(f"suricata:{tmp_path}/eve.json").path == f"{tmp_path}/eve.json"
    assert parse_source("lab_av").path is None


def test_a_log_is_read_incrementally_and_again_after_rotation(tmp_path: Path) -> None:
    inv = load_inventory(LAB_INVENTORY)
    eve = tmp_path / "eve.json"
    first = json.dumps(_alert("2026-11-27T08:00:01+00:00", "198.18.32.11"))
    second = json.dumps(_alert("2026-11-27T08:00:02+00:00", "198.18.32.12"))
    eve.write_text(first + "\n" + second[:40])  # the second line is still being written
    source = SuricataEveSource(inv, eve)
    since = datetime(2026, 11, 27, tzinfo=UTC)
    assert [d.host for d in source.detections(since)] == ["x-ws11"] and source.skipped == 0
    with eve.open("a") as fh:
        fh.write(second[40:] + "\n")
    assert [d.host for d in source.detections(since)] == ["x-ws11", "x-ws12"]
    rotated = tmp_path / "eve.json.1"
    eve.rename(rotated)
    eve.write_text(json.dumps(_alert("2026-11-27T08:00:03+00:00", "198.18.48.11")) + "\n")
    assert [d.host for d in source.detections(since)] == ["y-ws11"]
    eve.unlink()  # a log that disappears: what it said stays known, and the source says it cannot read it
    assert [d.host for d in source.detections(since)] == ["y-ws11"] and not source.readable


def test_the_lab_sensor_alerts_on_the_worm_payload_only() -> None:
    import socket
    import struct

    from orchestrator.lab.agent import PAYLOAD_MAGIC
    from orchestrator.lab.sensor import parse

    def frame(dport: int, payload: bytes, proto: int = 6, ethertype: int = 0x0800) -> bytes:
        tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, proto, 0,
                         socket.inet_aton("198.18.32.11"), socket.inet_aton("198.18.48.11"))
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + ip + tcp + b"\x00" * 6  # padding

    marker = PAYLOAD_MAGIC.strip()
    ports = {4445}
    assert parse(frame(4445, PAYLOAD_MAGIC + b'{"origin": "x"}'), ports, marker) == \
        ("198.18.32.11", 40000, "198.18.48.11", 4445)
    assert parse(frame(4445, b""), ports, marker) is None  # a handshake segment carries no payload
    assert parse(frame(4445, b"GET / HTTP/1.0"), ports, marker) is None
    assert parse(frame(80, PAYLOAD_MAGIC), ports, marker) is None
    assert parse(frame(4445, PAYLOAD_MAGIC, proto=17), ports, marker) is None
    assert parse(frame(4445, PAYLOAD_MAGIC, ethertype=0x86DD), ports, marker) is None


def test_a_dead_silent_or_clock_ahead_feed_cannot_vouch_for_no_detection(tmp_path: Path) -> None:
    from datetime import timedelta

    from orchestrator.core.inventory.model import DetectionSourceSpec
    from orchestrator.identification.sources import Sources

    inv = load_inventory(LAB_INVENTORY)
    now = datetime.now(UTC)
    eve = tmp_path / "eve.json"
    stats = {"event_type": "stats", "timestamp": (now - timedelta(seconds=30)).isoformat()}
    eve.write_text(json.dumps(stats) + "\n")
    spec = DetectionSourceSpec(kind="suricata", path=str(eve), max_silence=60)
    sources = Sources(inv, specs=[spec])
    sources.detections(now - timedelta(hours=1))
    assert sources.problems(now) == []  # a heartbeat 30s ago, max_silence 60s
    assert sources.problems(now + timedelta(seconds=120)) == [
        f"detection source suricata:{eve} is silent (no record for 150s, max_silence 60s): a dead feed is not an "
        "absence of infection"]
    eve.unlink()
    sources.detections(now)
    assert sources.problems(now) == [f"detection source suricata:{eve} cannot be read"]
    eve.write_text(json.dumps({**stats, "timestamp": (now + timedelta(minutes=10)).isoformat()}) + "\n")
    sources = Sources(inv, specs=[spec])
    sources.detections(now - timedelta(hours=1))
    (problem,) = sources.problems(now)
    assert "its newest record is 600s ahead of this controller's clock" in problem
