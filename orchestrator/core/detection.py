"""Detection sources: where irm learns about infections while it contains and recovers.

A source yields detection events (an AV/EDR/IDS alert: time, host, signature, action, source
address). The lab's source reads each area host's AV log (``irm_av_log``, JSON lines). A real AV
console, EDR or IDS feed plugs in by implementing ``DetectionSource``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from orchestrator.core.inventory import Inventory
from orchestrator.core.safefile import LOG_CHUNK_MAX, open_log
from orchestrator.core.safetext import shown

# What one bad record in a detection feed can raise while it is parsed: it is skipped and counted, never
# fatal (a value of Infinity, a time at the edge of the calendar, JSON nested 100,000 levels deep).
BAD_RECORD = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)

# Detections count from this long before the incident was opened: the worm was there before anyone
# opened the incident (the sub-area loop, --detected and status all look back the same way).
LOOKBACK = timedelta(hours=24)


def watch_start(opened_at: str, lookback: timedelta = LOOKBACK) -> datetime:
    """From when an incident opened at ``opened_at`` takes its detections into account."""
    return datetime.fromisoformat(opened_at) - lookback


@dataclass(frozen=True)
class Detection:
    time: datetime
    host: str
    signature: str
    action: str
    source_address: str | None
    segment: str | None
    area: str | None
    vector: str | None = None  # the propagation port a network detection saw (tcp/445), when it says
    network: bool = False  # an IDS alert on traffic (its signature names the exploit, not the malware)

    def __post_init__(self) -> None:
        # an alert's fields are the attacker's to choose: kept as irm prints them (escaped, bounded)
        for name in ("signature", "action", "source_address"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, shown(value))

    @property
    def infection(self) -> bool:
        """The host is (still) infected: detected, or blocked by an IPS (the worm tried and was stopped),
        or acted on by the AV. Only the record of irm's own disinfection ("cleaned") is not a sign."""
        return self.action != "cleaned"


class DetectionSource(Protocol):
    def detections(self, since: datetime) -> list[Detection]:
        """Detections at or after ``since``, oldest first."""
        ...

    def problems(self, now: datetime) -> list[str]:
        """Why the source cannot vouch for "no detection" at ``now`` (unreadable, silent, its clock ahead),
        one line each; empty when it can."""
        ...


class AvLogSource:
    """Reads every area host's AV log (the lab's simulated AV writes one per host)."""

    def __init__(self, inv: Inventory, area: str | list[str] | None = None) -> None:
        self.inv = inv
        areas = None if area is None else {area} if isinstance(area, str) else set(area)
        self.hosts = [h for h in inv.hosts.values() if h.kind == "area" and (areas is None or h.area in areas)]
        self._offsets: dict[str, int] = {}
        self._inodes: dict[str, int] = {}
        self._seen: dict[str, list[Detection]] = {}
        self.skipped: dict[str, int] = {}  # per host: lines that were not a detection (shown to the operator)

    def _read(self, host_name: str, path: Path) -> list[Detection]:
        """Read new lines only (logs grow; never re-parse the whole file on every poll). A log that was
        rotated (another file at that path) or truncated is read again from its start."""
        known = self._seen.setdefault(host_name, [])
        try:
            with open_log(path) as fh:
                st = os.fstat(fh.fileno())
                if self._inodes.get(host_name) != st.st_ino or st.st_size < self._offsets.get(host_name, 0):
                    self._offsets[host_name] = 0
                    self._inodes[host_name] = st.st_ino
                fh.seek(self._offsets.get(host_name, 0))
                chunk = fh.read(LOG_CHUNK_MAX)  # a log grown beyond it is read on the next polls
        except OSError:
            return known
        complete = chunk[: chunk.rfind(b"\n") + 1] if b"\n" in chunk else b""
        if not complete and len(chunk) == LOG_CHUNK_MAX:  # one line longer than a chunk: skipped, not a stall
            self._offsets[host_name] = self._offsets.get(host_name, 0) + len(chunk)
            self.skipped[host_name] = self.skipped.get(host_name, 0) + 1
            return known
        self._offsets[host_name] = self._offsets.get(host_name, 0) + len(complete)
        host = self.inv.hosts[host_name]
        for line in complete.splitlines():
            try:
                rec = json.loads(line)
                source = rec.get("source_address")
                known.append(Detection(
                    # the host is whose log this is: an infected host cannot write a detection for another
                    time=utc_time(str(rec["time"])), host=host_name,
                    signature=str(rec.get("signature", "?")), action=str(rec.get("action", "detected")),
                    source_address=str(source) if source is not None else None, segment=host.segment,
                    area=host.area,
                ))
            except BAD_RECORD:
                self.skipped[host_name] = self.skipped.get(host_name, 0) + 1  # torn, foreign or bad line
        return known

    @property
    def newest(self) -> datetime | None:
        """The newest detection read so far, from any host's log."""
        return max((d.time for known in self._seen.values() for d in known), default=None)

    def detections(self, since: datetime) -> list[Detection]:
        found = []
        for host in self.hosts:
            if host.av_log:
                found += [d for d in self._read(host.name, Path(host.av_log)) if d.time >= since]
        return sorted(found, key=lambda d: d.time)


def utc_time(text: str) -> datetime:
    """ISO 8601 to an aware UTC time; a time without a zone is taken as UTC (AV consoles log UTC)."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
