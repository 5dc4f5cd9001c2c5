"""Suricata EVE alerts as detections: the documented EVE fields (event_type, timestamp, src_ip,
alert.signature_id, alert.severity, alert.action), mapped to the inventory's hosts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.sources import SuricataEveSource, WazuhAlertsSource
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
