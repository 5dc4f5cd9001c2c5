"""Asset drift (``irm prepare --drift``): what the boundaries actually see against the inventory.

Each area's gateway resolves the addresses of the hosts that talk through it: its neighbour table
(``ip neigh`` on a Linux boundary, ``show arp`` on an IOS one) lists them. An address in one of the
area's segments that the inventory does not know is a host irm would not contain host by host (only by
its segment's boundary); an inventory host the gateway never resolved is off, quiet or gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from orchestrator.core import routing
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.inventory import Host, Inventory, hosts_by_os
from orchestrator.preparation.prepare import Check

_ARP_LINE = re.compile(r"^Internet\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)\s+([0-9a-f.]+|Incomplete)\s+\S+\s+(\S+)",
                       re.IGNORECASE)


@dataclass
class AreaDrift:
    area: str
    gateway: str
    unknown: list[str]  # addresses in the area's segments the inventory does not know
    never_seen: list[str]  # inventory hosts of the area the gateway has not resolved


def parse_show_arp(text: str) -> list[str]:
    """Addresses an IOS ``show arp`` lists with a hardware address (its own, age ``-``, left out)."""
    out = []
    for line in text.splitlines():
        m = _ARP_LINE.match(line.strip())
        if m and m.group(2) != "-" and m.group(3).lower() != "incomplete":
            out.append(m.group(1))
    return out


def parse_ip_neigh(rows: list[dict[str, Any]]) -> list[str]:
    """Addresses ``ip -j neigh`` lists with a link-layer address and not FAILED."""
    return [str(r["dst"]) for r in rows if r.get("lladdr") and "FAILED" not in (r.get("state") or [])]


def compare(inv: Inventory, area: str, seen: list[str]) -> AreaDrift:
    a = inv.areas[area]
    gateway = inv.hosts[a.gateway]
    known = {h.address for h in inv.hosts.values()}
    own = {seg.gateway_address for seg in a.segments}
    addresses = {IPv4Address(s) for s in seen}
    unknown = sorted(str(x) for x in addresses if any(x in seg.prefix for seg in a.segments)
                     and x not in known and x not in own)
    never = [h for h in a.hosts if inv.hosts[h].address not in addresses]
    return AreaDrift(area, gateway.name, unknown, never)


def read_ios(host: Host) -> list[str]:
    from orchestrator.core import ios_readback

    return parse_show_arp(ios_readback.show(host, "show arp"))


def drift(inv: Inventory, inventory: str | Path) -> tuple[list[AreaDrift], dict[str, str]]:
    """Each area's drift, and the gateways that could not be read (gateway -> why)."""
    gateways = {a.name: inv.hosts[a.gateway] for a in inv.areas.values()}
    linux = sorted({g.name for g in gateways.values() if g.boundary_kind == "nftables"})
    seen: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    if linux:
        try:
            result = routing.route(inv)("prepare_neighbours", inventory, extravars=hosts_by_os(inv, linux))
        except RunnerError as exc:
            errors.update(dict.fromkeys(linux, str(exc)))
        else:
            for name in linux:
                r = result.hosts.get(name)
                if r is None or r.status not in ("ok", "changed") or "irm_neighbours" not in r.facts:
                    errors[name] = "; ".join(r.failures)[:200] if r and r.failures else "did not answer"
                else:
                    seen[name] = parse_ip_neigh(list(r.facts["irm_neighbours"]))
    for g in {g.name: g for g in gateways.values() if g.boundary_kind == "cisco_ios"}.values():
        try:
            seen[g.name] = read_ios(g)
        except UserError as exc:
            errors[g.name] = str(exc)
    return [compare(inv, area, seen[g.name]) for area, g in gateways.items() if g.name in seen], errors


def drift_checks(inv: Inventory, inventory: str | Path) -> list[Check]:
    found, errors = drift(inv, inventory)
    out = [Check(f"drift {g}", False, f"neighbour table not read: {why}", "bring the boundary back")
           for g, why in sorted(errors.items())]
    for d in found:
        problems = []
        if d.unknown:
            problems.append(f"{len(d.unknown)} address(es) the inventory does not know: {', '.join(d.unknown)}")
        if d.never_seen:
            problems.append(f"{len(d.never_seen)} inventory host(s) {d.gateway} never resolved: "
                            f"{', '.join(d.never_seen)}")
        out.append(Check(f"drift {d.area}", not problems, "; ".join(problems) or
                         f"{d.gateway} sees exactly the inventory's hosts",
                         "add the unknown hosts to the inventory (or find out what they are); check the "
                         "hosts never seen are on" if problems else ""))
    return out
