"""Identification (IRM #1, step 2): from the detection sources to the perimeter, the business impact and
the exact next commands.

Pure over its inputs: the inventory, the detections (from ``sources.Sources``), the threshold and what
the journal says is already contained. ``irm identify`` prints it; ``--json`` gives the same data.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.core.detection import Detection
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.model import CriticalFlow, DetectionThreshold
from orchestrator.core.posture import resolve_endpoint


@dataclass
class HostSeen:
    host: str
    first_seen: datetime
    last_seen: datetime
    detections: int
    signatures: list[str]


@dataclass
class SegmentSeen:
    segment: str  # qualified: area/name
    kind: str  # sub_area or mobile
    detections: int
    first_seen: datetime
    peak: int  # the most detections within the threshold's window
    over_threshold: bool
    hosts: list[HostSeen]


@dataclass
class AreaSeen:
    area: str
    first_seen: datetime
    patient_zero: str
    detections: int
    segments: list[SegmentSeen]
    downtime_cost_per_hour: float | None
    posture: str  # what the journal says now (connected, when no incident or nothing done)

    @property
    def over_threshold(self) -> bool:
        return any(s.over_threshold for s in self.segments)


@dataclass
class FlowImpact:
    area: str
    flow: str
    owner: str
    touches: list[str]  # perimeter hosts among its ends
    kept_open: bool  # validated: containment keeps it open


@dataclass
class Identification:
    since: datetime
    threshold: DetectionThreshold
    areas: list[AreaSeen]
    outside: list[HostSeen]  # detected hosts that belong to no area (the core, the SOC's neighbours)
    unmapped: dict[str, int]  # reporters or addresses no inventory host matches, per source
    impact: list[FlowImpact]
    vectors: list[str]  # observed propagation ports (tcp/PORT), from network detections
    signatures: list[str]  # most frequent first
    malware: list[str]  # the host detections' signatures (AV/EDR name the malware), most frequent first
    patient_zero: str | None
    first_seen: datetime | None
    next_commands: list[str] = field(default_factory=list)

    @property
    def perimeter(self) -> list[str]:
        return [a.area for a in self.areas if a.over_threshold]

    def cost_per_hour(self) -> float | None:
        costs = [a.downtime_cost_per_hour for a in self.areas if a.over_threshold]
        return None if not costs or any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def to_json(self) -> dict[str, Any]:
        def host(h: HostSeen) -> dict[str, Any]:
            return {"host": h.host, "first_seen": h.first_seen.isoformat(), "last_seen": h.last_seen.isoformat(),
                    "detections": h.detections, "signatures": h.signatures}

        return {
            "since": self.since.isoformat(),
            "threshold": self.threshold.model_dump(),
            "perimeter": self.perimeter,
            "patient_zero": self.patient_zero,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "signatures": self.signatures,
            "vectors": self.vectors,
            "areas": [{"area": a.area, "posture": a.posture, "first_seen": a.first_seen.isoformat(),
                       "patient_zero": a.patient_zero, "detections": a.detections,
                       "over_threshold": a.over_threshold, "downtime_cost_per_hour": a.downtime_cost_per_hour,
                       "segments": [{"segment": s.segment, "kind": s.kind, "detections": s.detections,
                                     "first_seen": s.first_seen.isoformat(), "peak": s.peak,
                                     "over_threshold": s.over_threshold, "hosts": [host(h) for h in s.hosts]}
                                    for s in a.segments]} for a in self.areas],
            "outside_areas": [host(h) for h in self.outside],
            "unmapped": self.unmapped,
            "impact": {"flows": [vars(f) for f in self.impact], "downtime_cost_per_hour": self.cost_per_hour()},
            "next_commands": self.next_commands,
        }


def peak(times: list[datetime], window: timedelta) -> int:
    """The most detections within any window of this length (times sorted)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _hosts(dets: list[Detection]) -> list[HostSeen]:
    out = []
    for name in dict.fromkeys(d.host for d in dets):
        mine = [d for d in dets if d.host == name]
        out.append(HostSeen(name, mine[0].time, mine[-1].time, len(mine),
                            [s for s, _ in Counter(d.signature for d in mine).most_common()]))
    return out


def _touches(inv: Inventory, flow: CriticalFlow, perimeter_hosts: set[str]) -> list[str]:
    """Perimeter hosts that are one of the flow's ends (a host, a sub-area, an area or a prefix)."""
    nets = [n for end in [*flow.sources, *flow.destinations] for n in resolve_endpoint(inv, end)]
    return [name for name in sorted(perimeter_hosts) if any(inv.hosts[name].address in n for n in nets)]


def identify(inv: Inventory, detections: list[Detection], since: datetime, threshold: DetectionThreshold,
             postures: dict[str, str], unmapped: dict[str, int], incident_open: bool,
             inventory_arg: str | None = None, sources: list[str] | None = None) -> Identification:
    window = timedelta(seconds=threshold.within)
    areas: list[AreaSeen] = []
    for area in inv.areas.values():
        mine = [d for d in detections if d.area == area.name]
        if not mine:
            continue
        segments = []
        for seg in area.segments:
            dets = [d for d in mine if d.segment == seg.qualified]
            if dets:
                top = peak([d.time for d in dets], window)
                segments.append(SegmentSeen(seg.qualified, seg.kind, len(dets), dets[0].time, top,
                                            top >= threshold.detections, _hosts(dets)))
        areas.append(AreaSeen(area.name, mine[0].time, mine[0].host, len(mine), segments,
                              area.downtime_cost_per_hour, postures.get(area.name, "connected")))
    areas.sort(key=lambda a: a.first_seen)
    outside = _hosts([d for d in detections if d.area is None])
    perimeter_hosts = {h.host for a in areas if a.over_threshold for s in a.segments for h in s.hosts}
    impact = []
    for area in inv.areas.values():
        for flow in area.critical_flows:
            touches = _touches(inv, flow, perimeter_hosts)
            in_perimeter = area.name in {a.area for a in areas if a.over_threshold}
            if touches or in_perimeter:
                impact.append(FlowImpact(area.name, flow.name, flow.owner, touches, flow.validated_by is not None))
    vectors = sorted({d.vector for d in detections if d.vector}, key=lambda v: (v.split("/")[0], int(v.split("/")[1])))
    signatures = [s for s, _ in Counter(d.signature for d in detections).most_common()]
    malware = [s for s, _ in Counter(d.signature for d in detections if not d.network).most_common()]
    result = Identification(since, threshold, areas, outside, unmapped, impact, vectors, signatures, malware,
                            patient_zero(inv, detections), detections[0].time if detections else None)
    result.next_commands = _next(result, incident_open, inventory_arg, sources or [])
    return result


def patient_zero(inv: Inventory, detections: list[Detection]) -> str | None:
    """The earliest-detected host whose infection no detection attributes to another inventory host (a host
    detection's source address names who infected it). The earliest detection alone can mislead: an IDS sees
    a second host's first routed attempt before the first host's AV reports it."""
    addresses = {str(h.address): h.name for h in inv.hosts.values()}
    infected_by_peer = {d.host for d in detections if not d.network and d.source_address
                        and addresses.get(d.source_address) not in (None, d.host)}
    for d in detections:  # oldest first
        if d.host not in infected_by_peer:
            return d.host
    return detections[0].host if detections else None


def _next(result: Identification, incident_open: bool, inventory_arg: str | None, sources: list[str]) -> list[str]:
    """The commands to type next, with the inventory and the --source options identify was given (contain
    watches the same feeds)."""
    inv_opt = f" -i {shlex.quote(inventory_arg)}" if inventory_arg else ""
    inv_opt += "".join(f" --source {shlex.quote(s)}" for s in sources)
    to_contain = [a.area for a in result.areas if a.over_threshold and a.posture == "connected"]
    commands = []
    if not incident_open and result.perimeter:
        worm = result.malware[0] if result.malware else result.signatures[0]
        vectors = " ".join(f"--vector {v}" for v in result.vectors) or "--vector tcp/PORT"
        sigs = " ".join(f"--signature {shlex.quote(s)}" for s in result.signatures[:3])
        commands.append(f"irm incident open --worm {shlex.quote(worm)} {vectors} {sigs}")
    if to_contain:
        commands.append(f"irm contain{inv_opt} " + " ".join(f"--area {shlex.quote(a)}" for a in to_contain))
    return commands
