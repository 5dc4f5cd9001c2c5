"""Detection sources beyond the lab's AV logs (issue: identification from real detection formats).

``WazuhAlertsSource`` reads Wazuh's ``alerts.json`` (one alert per line): alerts whose ``rule.level`` is
at least a threshold, optionally only some rule ids; the host is the reporting agent (``agent.name``
matching an inventory host, else ``agent.ip`` an inventory address), the source address
``data.srcip`` when the rule decoded one.

``SuricataEveSource`` reads a Suricata EVE JSON log (one JSON object per line, as Suricata's
``eve-log`` output writes it): only ``event_type: alert`` records count, optionally only some signature
ids and only alerts at least as severe as a threshold (Suricata's severity 1 is the most severe). The
alert's ``src_ip`` is the host the worm runs on; it is mapped to the inventory's host of that address,
and an alert from an address the inventory does not know is counted, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.core.detection import Detection, utc_time
from orchestrator.core.inventory import Host, Inventory


@dataclass
class _JsonLinesSource:
    """A JSON-lines log read whole at each poll; each subclass turns one record into a detection."""

    inv: Inventory
    path: Path
    skipped: int = field(default=0, init=False)  # lines that are not JSON or not a well-formed record
    unmapped: dict[str, int] = field(default_factory=dict, init=False)  # who reported -> records irm cannot place

    def detections(self, since: datetime) -> list[Detection]:
        self.skipped, self.unmapped = 0, {}
        by_address = {str(h.address): h for h in self.inv.hosts.values() if h.kind != "soc"}
        found = []
        for rec in _records(self.path):
            try:
                detection = self._detection(rec, by_address) if rec is not None else None
            except (ValueError, KeyError, TypeError, AttributeError):
                rec = None
            if rec is None:
                self.skipped += 1
            elif detection is not None and detection.time >= since:
                found.append(detection)
        return sorted(found, key=lambda d: d.time)

    def _detection(self, rec: dict[str, Any], by_address: dict[str, Host]) -> Detection | None:
        raise NotImplementedError

    def _unmapped(self, who: str) -> None:
        self.unmapped[who] = self.unmapped.get(who, 0) + 1


@dataclass
class SuricataEveSource(_JsonLinesSource):
    signature_ids: frozenset[int] = frozenset()  # empty: every signature
    max_severity: int = 3  # alerts of this severity or more severe (1 is the most severe)

    def _detection(self, rec: dict[str, Any], by_address: dict[str, Host]) -> Detection | None:
        if rec.get("event_type") != "alert":
            return None
        alert = rec["alert"]
        sid, severity = int(alert["signature_id"]), int(alert.get("severity", 3))
        when, source = utc_time(str(rec["timestamp"])), str(rec["src_ip"])
        if (self.signature_ids and sid not in self.signature_ids) or severity > self.max_severity:
            return None
        host = by_address.get(source)
        if host is None:
            self._unmapped(source)
            return None
        return Detection(time=when, host=host.name, signature=str(alert.get("signature", sid)),
                         action="blocked" if alert.get("action") == "blocked" else "detected",
                         source_address=source, segment=host.segment, area=host.area)


@dataclass
class WazuhAlertsSource(_JsonLinesSource):
    rule_ids: frozenset[str] = frozenset()  # empty: every rule
    min_level: int = 10  # Wazuh levels run 0 to 15; 10 and up are the high-severity groups

    def _detection(self, rec: dict[str, Any], by_address: dict[str, Host]) -> Detection | None:
        rule, agent = rec["rule"], rec.get("agent") or {}
        level, rule_id, when = int(rule["level"]), str(rule["id"]), utc_time(str(rec["timestamp"]))
        if (self.rule_ids and rule_id not in self.rule_ids) or level < self.min_level:
            return None
        name, address = str(agent.get("name", "")), str(agent.get("ip", ""))
        host = self.inv.hosts.get(name) if name in self.inv.hosts and self.inv.hosts[name].kind != "soc" \
            else by_address.get(address)
        if host is None:
            self._unmapped(name or address or "?")
            return None
        data = rec.get("data")
        srcip = data.get("srcip") if isinstance(data, dict) else None
        return Detection(time=when, host=host.name, signature=str(rule.get("description", rule_id)),
                         action="detected", source_address=str(srcip) if srcip else None,
                         segment=host.segment, area=host.area)


def _records(path: Path) -> Iterator[dict[str, Any] | None]:
    """Every JSON object of a JSON-lines log (``None`` for a line that is not one); an unreadable log has
    none."""
    try:
        lines = path.read_bytes().splitlines()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        yield rec if isinstance(rec, dict) else None
