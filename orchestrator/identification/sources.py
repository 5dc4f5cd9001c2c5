"""Detection sources: where irm learns about infections while it contains and recovers. Each yields
detection events (an AV/EDR/IDS alert: time, host, signature, action, source address).

``AvLogSource`` reads each area host's AV log (``irm_av_log``, JSON lines; the lab's simulated AV writes
one per host). Suricata, Wazuh and Microsoft Defender are declared in the inventory
(``irm_detection_sources``) or given on the command line (``--source KIND:PATH``).

``WazuhAlertsSource`` reads Wazuh's ``alerts.json`` (one alert per line): alerts whose ``rule.level`` is
at least a threshold, optionally only some rule ids; the host is the reporting agent (``agent.name``
matching an inventory host, else ``agent.ip`` an inventory address), the source address
``data.srcip`` when the rule decoded one.

``SuricataEveSource`` reads a Suricata EVE JSON log (one JSON object per line, as Suricata's
``eve-log`` output writes it): only ``event_type: alert`` records count, optionally only some signature
ids and only alerts at least as severe as a threshold (Suricata's severity 1 is the most severe). The
alert's ``src_ip`` is the host the worm runs on; it is mapped to the inventory's host of that address,
and an alert from an address the inventory does not know is counted, never guessed.

``DefenderEventsSource`` reads Microsoft Defender Antivirus events 1116 (malware detected) and 1117
(action taken) exported as JSON: Winlogbeat's documents (``winlog.event_id``, ``winlog.computer_name``,
``winlog.event_data`` with the event's named fields) or PowerShell's ``Get-WinEvent | ConvertTo-Json``
(``Id``, ``MachineName``, ``TimeCreated``, ``Message``), as JSON lines or one JSON array. The computer
is the host: its short name matches an inventory host. Defender logs no network source address.

``Sources`` combines every configured source into one ``DetectionSource``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from orchestrator.core.detection import Detection
from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Host, Inventory
from orchestrator.core.inventory.model import DetectionSourceSpec, SourceKind
from orchestrator.core.safefile import LOG_CHUNK_MAX, open_log
from orchestrator.core.safetext import shown

# What one bad record in a detection feed can raise while it is parsed: it is skipped and counted, never
# fatal (a value of Infinity, a time at the edge of the calendar, JSON nested 100,000 levels deep).
BAD_RECORD = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)


def utc_time(text: str) -> datetime:
    """ISO 8601 to an aware UTC time; a time without a zone is taken as UTC (AV consoles log UTC)."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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



@dataclass
class _JsonLinesSource:
    """A JSON-lines log read incrementally (only what was appended since the last poll; a rotated or
    truncated log is read again from its start), or a file holding one JSON array (read whole when it
    changes); each subclass turns one record into a detection."""

    inv: Inventory
    path: Path
    skipped: int = field(default=0, init=False)  # lines that are not JSON or not a well-formed record
    unmapped: dict[str, int] = field(default_factory=dict, init=False)  # who reported -> records irm cannot place
    newest: datetime | None = field(default=None, init=False)  # the newest record's time, matching or not
    readable: bool = field(default=False, init=False)
    _found: list[Detection] = field(default_factory=list, init=False, repr=False)
    _offset: int = field(default=0, init=False, repr=False)
    _file: tuple[int, int, int] | None = field(default=None, init=False, repr=False)  # inode, size, mtime

    def detections(self, since: datetime) -> list[Detection]:
        self._poll()
        return sorted((d for d in self._found if d.time >= since), key=lambda d: d.time)

    def _reset(self) -> None:
        self.skipped, self.unmapped, self.newest, self._found, self._offset = 0, {}, None, [], 0

    def _poll(self) -> None:
        try:
            with open_log(self.path) as fh:
                st = os.fstat(fh.fileno())
                if self._file is None or self._file[0] != st.st_ino or st.st_size < self._offset:
                    self._reset()
                fh.seek(self._offset)
                chunk = fh.read(LOG_CHUNK_MAX)  # a log grown beyond it is read on the next polls
        except OSError:
            self.readable = False
            return
        self.readable = True
        by_address = {str(h.address): h for h in self.inv.hosts.values() if h.kind != "soc"}
        if self._offset == 0 and chunk.lstrip()[:1] == b"[":  # one JSON array (PowerShell's ConvertTo-Json)
            if self._file != (st.st_ino, st.st_size, st.st_mtime_ns):
                self._reset()
                for rec in _array(chunk):
                    self._take(rec, by_address)
            self._file = (st.st_ino, st.st_size, st.st_mtime_ns)
            return
        self._file = (st.st_ino, st.st_size, st.st_mtime_ns)
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        if not complete and len(chunk) == LOG_CHUNK_MAX:  # one line longer than a chunk: skipped, not a stall
            self._offset += len(chunk)
            self.skipped += 1
            return
        self._offset += len(complete)
        for line in complete.splitlines():
            if line.strip():
                self._take(_object(line), by_address)

    def _take(self, rec: dict[str, Any] | None, by_address: dict[str, Host]) -> None:
        try:
            detection = self._detection(rec, by_address) if rec is not None else None
        except BAD_RECORD:
            rec = None
        if rec is None:
            self.skipped += 1
            return
        when = self._time(rec)
        if when is not None and (self.newest is None or when > self.newest):
            self.newest = when
        if detection is not None:
            self._found.append(detection)

    def _detection(self, rec: dict[str, Any], by_address: dict[str, Host]) -> Detection | None:
        raise NotImplementedError

    def _time(self, rec: dict[str, Any]) -> datetime | None:
        try:
            return utc_time(str(rec["timestamp"]))
        except BAD_RECORD:
            return None

    def _unmapped(self, who: str) -> None:
        who = shown(who, 100)  # an agent's or a machine's name, as the alert says it
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
        proto, port = str(rec.get("proto", "")).lower(), rec.get("dest_port")
        vector = f"{proto}/{int(port)}" if proto in ("tcp", "udp") and isinstance(port, int) else None
        return Detection(time=when, host=host.name, signature=str(alert.get("signature", sid)),
                         action="blocked" if alert.get("action") == "blocked" else "detected",
                         source_address=source, segment=host.segment, area=host.area, vector=vector,
                         network=True)


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


@dataclass
class DefenderEventsSource(_JsonLinesSource):
    threat_ids: frozenset[int] = frozenset()  # empty: every threat
    min_severity: int = 1  # Defender's severity ids: 1 low, 2 moderate, 4 high, 5 severe

    def _fields(self, rec: dict[str, Any]) -> tuple[int, str, datetime, dict[str, str]]:
        """Event id, computer, time and the event's named data, from either export."""
        if "winlog" in rec:
            log = rec["winlog"]
            return (int(log["event_id"]), str(log["computer_name"]), utc_time(str(rec["@timestamp"])),
                    {str(k): str(v) for k, v in (log.get("event_data") or {}).items()})
        data: dict[str, str] = {}
        for line in str(rec.get("Message", "")).splitlines():  # "\tName: Trojan:Win32/...": the event's fields
            key, sep, value = line.strip().partition(": ")
            if sep:
                data.setdefault(key, value.strip())
        data = {_MESSAGE_KEYS.get(k, k): v for k, v in data.items()}
        return int(rec["Id"]), str(rec["MachineName"]), _powershell_time(rec["TimeCreated"]), data

    def _time(self, rec: dict[str, Any]) -> datetime | None:
        try:
            return self._fields(rec)[2]
        except BAD_RECORD:
            return None

    def _detection(self, rec: dict[str, Any], by_address: dict[str, Host]) -> Detection | None:
        event_id, computer, when, data = self._fields(rec)
        if event_id not in (1116, 1117):
            return None
        threat_id = int(data["Threat ID"]) if data.get("Threat ID", "").isdigit() else None
        severity = int(data["Severity ID"]) if data.get("Severity ID", "").isdigit() \
            else _DEFENDER_SEVERITY.get(data.get("Severity Name", "").lower(), 0)
        if (self.threat_ids and threat_id not in self.threat_ids) or severity < self.min_severity:
            return None
        short = computer.split(".")[0].lower()
        host = next((h for h in self.inv.hosts.values() if h.name.lower() == short and h.kind != "soc"), None)
        if host is None:
            self._unmapped(computer)
            return None
        action = "detected" if event_id == 1116 else (data.get("Action Name") or "acted").lower()
        return Detection(time=when, host=host.name, signature=data.get("Threat Name") or f"threat {threat_id}",
                         action=action, source_address=None, segment=host.segment, area=host.area)


# the labels of an event's Message text -> the event data's field names (Winlogbeat's)
_MESSAGE_KEYS = {"Name": "Threat Name", "ID": "Threat ID", "Severity": "Severity Name", "Action": "Action Name"}
_DEFENDER_SEVERITY = {"low": 1, "moderate": 2, "high": 4, "severe": 5}


def _powershell_time(value: Any) -> datetime:
    """PowerShell 5's ConvertTo-Json writes a DateTime as ``/Date(milliseconds)/``; PowerShell 7 as ISO 8601."""
    text = str(value)
    match = re.fullmatch(r"/Date\((-?\d+)([+-]\d{4})?\)/", text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    return utc_time(text)


def _readable(path: Path) -> bool:
    try:
        with open_log(path):
            return True
    except OSError:
        return False


def _object(line: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(line)
    except BAD_RECORD:
        return None
    return rec if isinstance(rec, dict) else None


def _array(data: bytes) -> list[dict[str, Any] | None]:
    try:
        items = json.loads(data)
    except BAD_RECORD:
        return [None]
    return [i if isinstance(i, dict) else None for i in items] if isinstance(items, list) else [None]


SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


def parse_source(text: str) -> DetectionSourceSpec:
    """``KIND:PATH`` from the command line (``lab_av`` alone has no path)."""
    kind, sep, path = text.partition(":")
    if kind not in SOURCE_KINDS:
        raise UserError(f"--source '{text}': unknown kind '{kind}' (kinds: {', '.join(SOURCE_KINDS)})")
    if kind == "lab_av":
        if sep:
            raise UserError(f"--source '{text}': lab_av takes no path (it reads each area host's irm_av_log)")
        return DetectionSourceSpec(kind="lab_av")
    if not path:
        raise UserError(f"--source '{text}': give the log's path as {kind}:PATH")
    if not Path(path).is_file():
        raise UserError(f"--source '{text}': {path} is not a readable file")
    return DetectionSourceSpec(kind=kind, path=path)


@dataclass
class SourceHealth:
    label: str
    readable: bool
    newest: datetime | None
    skipped: int
    unmapped: dict[str, int]


class Sources:
    """Every configured source as one ``DetectionSource``: the given specs, else the inventory's
    ``irm_detection_sources``, else the lab AV logs (what irm read before sources were configurable)."""

    def __init__(self, inv: Inventory, area: str | list[str] | None = None,
                 specs: Sequence[DetectionSourceSpec] = ()) -> None:
        self.specs = tuple(specs) or inv.detection_sources or (DetectionSourceSpec(kind="lab_av"),)
        self.sources: list[tuple[DetectionSourceSpec, Any]] = [(s, _build(inv, s, area)) for s in self.specs]
        self.areas = None if area is None else {area} if isinstance(area, str) else set(area)

    def detections(self, since: datetime) -> list[Detection]:
        found = [d for _, src in self.sources for d in src.detections(since)
                 if self.areas is None or d.area in self.areas]
        return sorted(found, key=lambda d: (d.time, d.host))

    @property
    def skipped(self) -> dict[str, int]:
        """Lines that were not detections, per AV log host or per source."""
        out: dict[str, int] = {}
        for spec, src in self.sources:
            if isinstance(src, AvLogSource):
                out.update(src.skipped)
            elif src.skipped:
                out[spec.label] = src.skipped
        return out

    def problems(self, now: datetime) -> list[str]:
        """Every source that cannot vouch for "no detection" now (see ``feed_problems``); read them first."""
        return feed_problems(self.specs, self.health(), now)

    def health(self) -> list[SourceHealth]:
        """Each source after its last read: readable, its newest record, what it could not read or place."""
        out = []
        for spec, src in self.sources:
            if isinstance(src, AvLogSource):
                # an AV log appears with its host's first detection: where none exists yet, its directory
                # (where the AV writes) must; one that exists must be readable
                logs = [Path(h.av_log) for h in src.hosts if h.av_log]
                readable = bool(logs) and all(p.parent.is_dir() and (not p.exists() or _readable(p)) for p in logs)
                out.append(SourceHealth(spec.label, readable, src.newest, sum(src.skipped.values()), {}))
            else:
                out.append(SourceHealth(spec.label, src.readable, src.newest, src.skipped, dict(src.unmapped)))
        return out


MAX_CLOCK_SKEW = 60.0  # seconds a source's newest record may lie ahead of this controller's clock


def feed_problems(specs: Sequence[DetectionSourceSpec], health: Sequence[SourceHealth], now: datetime) -> list[str]:
    """Why a source cannot vouch for "no detection" now, one line each: it cannot be read, it has been
    silent longer than its ``max_silence``, or its records lie in the future of this controller's clock
    (a clock that disagrees: its times cannot be compared with a soak window)."""
    out = []
    for spec, h in zip(specs, health, strict=True):
        if not h.readable:
            out.append(f"detection source {h.label} cannot be read")
            continue
        ahead = (h.newest - now).total_seconds() if h.newest else 0.0
        if ahead > MAX_CLOCK_SKEW:
            out.append(f"detection source {h.label}: its newest record is {ahead:.0f}s ahead of this controller's "
                       f"clock (more than {MAX_CLOCK_SKEW:.0f}s): its clock disagrees, its times cannot be trusted")
            continue
        silent = (now - h.newest).total_seconds() if h.newest else None
        if spec.max_silence is not None and (silent is None or silent > spec.max_silence):
            out.append(f"detection source {h.label} is silent ("
                       + ("no record ever" if silent is None else f"no record for {silent:.0f}s")
                       + f", max_silence {spec.max_silence:.0f}s): a dead feed is not an absence of infection")
    return out


def _build(inv: Inventory, spec: DetectionSourceSpec, area: str | list[str] | None) -> Any:
    if spec.kind == "lab_av":
        return AvLogSource(inv, area)
    path = Path(spec.path or "")
    if spec.kind == "suricata":
        return SuricataEveSource(inv, path, signature_ids=frozenset(spec.signature_ids),
                                 max_severity=spec.max_severity)
    if spec.kind == "wazuh":
        return WazuhAlertsSource(inv, path, rule_ids=frozenset(spec.rule_ids), min_level=spec.min_level)
    return DefenderEventsSource(inv, path, threat_ids=frozenset(spec.threat_ids), min_severity=spec.min_severity)
