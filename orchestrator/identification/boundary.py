"""The boundaries as a detection source: irm's own drop rules count the worm's attempts.

IRM #1 lists suspicious connection attempts in firewalls among the symptoms and asks that the spread be
monitored. Every boundary irm contains carries a sensor per sub-area (``posture.vector_sensors``): a drop
of the incident's vectors from that sub-area, placed where it enforces nothing more than the rule after
it. Its counter (nftables; an IOS boundary: the access list's hit count, read with netmiko) is read from
the live device and compared with the last reading: a rise is a detection of that sub-area, at the time
it was read, by the boundary that dropped it. Nothing irm wrote stands in for the count; a boundary that
cannot be read is said (``problems``), never taken for silence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core import ios_readback, runner
from orchestrator.core.detection import BOUNDARY_SOURCE, Detection, Drop
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.inventory import Inventory, hosts_by_os
from orchestrator.core.posture import SENSOR, Policy

# hosts -> their planned policies -> (host -> {rule comment: packets}, host -> why it could not be read)
Reader = Callable[[list[str], dict[str, Policy]], tuple[dict[str, dict[str, int]], dict[str, str]]]


def boundary_drops(inv: Inventory, planned: dict[str, Policy],
                   counted: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """sub-area -> the worm's attempts from it that irm's rules dropped, as their counters saw them since
    each table was loaded (nftables counters; an IOS boundary: its access list's hit counts): a gateway's
    sensor rules (``posture.vector_sensors``) and each area host's outbound vector rule (once the vectors
    are blocked on the hosts, a host drops its own worm's attempts before they reach the gateway). Looked up
    by the planned rules' comments, never by a live comment irm did not plan: {"packets": N, "at": {host:
    N}}."""
    out: dict[str, dict[str, Any]] = {}
    for host, counts in counted.items():
        policy = planned.get(host)
        if policy is None:
            continue
        for rule in (*policy.forward.rules, *policy.output.rules):
            if rule.comment not in counts:
                continue
            segment: str | None
            if rule.comment.startswith(SENSOR):
                segment = rule.comment.partition(" from ")[2]
            elif rule.comment.startswith("vector ") and rule.comment.endswith(" outbound"):
                segment = inv.hosts[host].segment if host in inv.hosts else None
            else:
                continue
            if segment:
                row = out.setdefault(segment, {"packets": 0, "at": {}})
                row["packets"] += int(counts[rule.comment])
                row["at"][host] = row["at"].get(host, 0) + int(counts[rule.comment])
    return dict(sorted(out.items()))


def counter_reader(inv: Inventory, inventory: Path, run: runner.PlaybookRunner) -> Reader:
    """Read the counters of ``hosts`` live: an IOS boundary with netmiko (its access list compared with
    the plan on the way), the others with the ``firewall_read`` play (one play for all of them)."""

    def read(hosts: list[str], planned: dict[str, Policy]) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
        counted: dict[str, dict[str, int]] = {}
        errors: dict[str, str] = {}
        ios = [h for h in hosts if inv.hosts[h].boundary_kind == "cisco_ios"]
        for h in ios:
            try:
                problems, counted[h] = ios_readback.verify_counted(inv.hosts[h], planned[h])
            except UserError as exc:
                errors[h] = str(exc)
                continue
            if problems:  # counts of a list that is not irm's plan would count the wrong thing
                errors[h] = f"does not hold the planned access list ({problems[0]})"
                del counted[h]
        others = [h for h in hosts if h not in ios]
        if not others:
            return counted, errors
        try:
            result = run("firewall_read", inventory, extravars=hosts_by_os(inv, others))
        except RunnerError as exc:
            return counted, errors | dict.fromkeys(others, str(exc))
        for h in others:
            r = result.hosts.get(h)
            if r is None or r.status not in ("ok", "changed"):
                errors[h] = f"not read ({r.status if r else 'no result'})"
            elif r.facts.get("irm_live_error"):
                errors[h] = f"nftables could not be read: {r.facts['irm_live_error']}"
            else:
                counted[h] = {str(k): int(v) for k, v in (r.facts.get("irm_counters") or {}).items()}
        return counted, errors

    return read


class BoundarySensor:
    """The sensors of ``hosts`` (an area's gateways) as a detection source. Each ``poll`` reads their
    counters live and turns every rise since the last reading into one detection of the sub-area it
    counts; a table irm replaced since (its planned fingerprint changed) counts again from zero, as the
    kernel does. ``planned()`` is the policy each boundary should hold (the journal's postures)."""

    label = BOUNDARY_SOURCE

    def __init__(self, inv: Inventory, hosts: list[str], read: Reader, planned: Callable[[], dict[str, Policy]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.inv = inv
        self.hosts = list(dict.fromkeys(hosts))
        self.read = read
        self.planned = planned
        self.clock = clock
        self.last: dict[tuple[str, str], int] = {}  # (sub-area, host) -> packets at the last reading
        self.tables: dict[str, str] = {}  # host -> the fingerprint of the table last read
        self.found: list[Detection] = []
        self.errors: dict[str, str] = {}
        self.failing: dict[str, int] = {}  # host -> readings failed in a row
        self.read_at: datetime | None = None

    def poll(self, skip: Collection[str] = ()) -> list[Drop]:
        """Read the counters now; the new detections (none for a sub-area in ``skip``: its rise is counted,
        not reported, as for a sub-area already quarantined, whose worm the boundary is dropping)."""
        planned = self.planned()
        # a host whose plan drops nothing has no counter to read (its area is not contained)
        hosts = [h for h in self.hosts if h in planned
                 and any(r.action == "drop" for c in ("input", "forward", "output") for r in planned[h].chain(c).rules)]
        counted, errors = self.read(hosts, planned) if hosts else ({}, {})
        # a boundary read while irm changes it may not hold its plan yet: a problem once it fails twice running
        self.failing = {h: self.failing.get(h, 0) + 1 for h in errors}
        self.errors = {h: why for h, why in errors.items() if self.failing[h] >= 2}
        now = self.read_at = self.clock()
        for h in counted:
            if self.tables.get(h) != planned[h].fingerprint:
                self.last = {k: v for k, v in self.last.items() if k[1] != h}
                self.tables[h] = planned[h].fingerprint
        fresh = []
        for segment, row in boundary_drops(self.inv, planned, counted).items():
            for host, packets in sorted(row["at"].items()):
                before = self.last.get((segment, host), 0)
                rise = packets - before if packets >= before else packets  # reloaded by someone else
                self.last[(segment, host)] = packets
                if rise > 0 and segment not in skip:
                    fresh.append(Drop(Detection(
                        time=now, host=host, action="blocked", source_address=None, segment=segment,
                        area=self.inv.segment(segment).area, network=True,
                        signature=f"irm boundary {host} dropped {rise} worm attempt(s) from {segment}"),
                        rise, packets))
        self.found += [d.detection for d in fresh]
        return fresh

    def detections(self, since: datetime) -> list[Detection]:
        return [d for d in self.found if d.time >= since]

    def problems(self, now: datetime) -> list[str]:
        return [f"boundary sensor {h} could not be read: {why}" for h, why in sorted(self.errors.items())]
