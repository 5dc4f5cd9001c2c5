"""Detection sources beyond the lab's AV logs (issue: identification from real detection formats).

``SuricataEveSource`` reads a Suricata EVE JSON log (one JSON object per line, as Suricata's
``eve-log`` output writes it): only ``event_type: alert`` records count, optionally only some signature
ids and only alerts at least as severe as a threshold (Suricata's severity 1 is the most severe). The
alert's ``src_ip`` is the host the worm runs on; it is mapped to the inventory's host of that address,
and an alert from an address the inventory does not know is counted, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.core.detection import Detection
from orchestrator.core.inventory import Inventory


@dataclass
class SuricataEveSource:
    inv: Inventory
    path: Path
    signature_ids: frozenset[int] = frozenset()  # empty: every signature
    max_severity: int = 3  # alerts of this severity or more severe (1 is the most severe)
    skipped: int = 0  # lines that are not JSON or not a well-formed alert
    unmapped: dict[str, int] = field(default_factory=dict)  # source address -> alerts from it irm cannot place

    def detections(self, since: datetime) -> list[Detection]:
        by_address = {str(h.address): h for h in self.inv.hosts.values()}
        self.skipped, self.unmapped = 0, {}
        found = []
        try:
            lines = self.path.read_bytes().splitlines()
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            return []
        for line in lines:
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or rec.get("event_type") != "alert":
                    continue
                alert = rec["alert"]
                sid, severity = int(alert["signature_id"]), int(alert.get("severity", 3))
                when = datetime.fromisoformat(str(rec["timestamp"]))
                source = str(rec["src_ip"])
            except (ValueError, KeyError, TypeError):
                self.skipped += 1
                continue
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            if (self.signature_ids and sid not in self.signature_ids) or severity > self.max_severity or when < since:
                continue
            host = by_address.get(source)
            if host is None:
                self.unmapped[source] = self.unmapped.get(source, 0) + 1
                continue
            action = "blocked" if alert.get("action") == "blocked" else "detected"
            found.append(Detection(time=when, host=host.name, signature=str(alert.get("signature", sid)),
                                   action=action, source_address=source, segment=host.segment, area=host.area))
        return sorted(found, key=lambda d: d.time)
