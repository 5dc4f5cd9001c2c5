"""Detection sources: where irm learns about infections while it contains and recovers.

A source yields detection events (an AV/EDR/IDS alert: time, host, signature, action, source
address). The lab's source reads each area host's AV log (``irm_av_log``, JSON lines). A real AV
console, EDR or IDS feed plugs in by implementing ``DetectionSource``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from orchestrator.inventory import Inventory


@dataclass(frozen=True)
class Detection:
    time: datetime
    host: str
    signature: str
    action: str
    source_address: str | None
    segment: str | None
    area: str | None


class DetectionSource(Protocol):
    def detections(self, since: datetime) -> list[Detection]:
        """Detections at or after ``since``, oldest first."""
        ...


class AvLogSource:
    """Reads every area host's AV log (the lab's simulated AV writes one per host)."""

    def __init__(self, inv: Inventory, area: str | None = None) -> None:
        self.inv = inv
        self.hosts = [h for h in inv.hosts.values() if h.kind == "area" and (area is None or h.area == area)]
        self._offsets: dict[str, int] = {}
        self._seen: dict[str, list[Detection]] = {}

    def _read(self, host_name: str, path: Path) -> list[Detection]:
        """Read new lines only (logs grow; never re-parse the whole file on every poll)."""
        known = self._seen.setdefault(host_name, [])
        try:
            with path.open("rb") as fh:
                fh.seek(self._offsets.get(host_name, 0))
                chunk = fh.read()
        except FileNotFoundError:
            return known
        complete = chunk[: chunk.rfind(b"\n") + 1] if b"\n" in chunk else b""
        self._offsets[host_name] = self._offsets.get(host_name, 0) + len(complete)
        host = self.inv.hosts[host_name]
        for line in complete.splitlines():
            try:
                rec = json.loads(line)
                known.append(Detection(
                    time=datetime.fromisoformat(rec["time"]), host=rec.get("host", host_name),
                    signature=str(rec.get("signature", "?")), action=str(rec.get("action", "detected")),
                    source_address=rec.get("source_address"), segment=host.segment, area=host.area,
                ))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line is not a detection
        return known

    def detections(self, since: datetime) -> list[Detection]:
        found = []
        for host in self.hosts:
            if host.av_log:
                found += [d for d in self._read(host.name, Path(host.av_log)) if d.time >= since]
        return sorted(found, key=lambda d: d.time)
