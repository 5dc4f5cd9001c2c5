"""What the emulated IOS device's access lists do to real packets: its running-config translated into
one nftables table (``inet ios``) in the device's namespace, so the lab's traffic and its worm meet the
access lists exactly as configured.

IOS semantics kept: an access list bound ``in`` on an interface filters every packet arriving on it (to
be routed, or for the device itself); bound ``out``, every routed packet leaving by it (not the
device's own). Entries match first to last; a permit lets the packet on to the next check, a deny drops
it, and a list that matches nothing denies (the implicit ``deny ip any any``). A list bound but not
defined filters nothing, as on IOS. ``established`` matches TCP segments with ACK or RST; ``log`` and
remarks change nothing here. Every entry counts the packets it matches (``show access-lists``' "(N
matches)", read back by ``hits``). Pure functions: the lab's server loads what ``ruleset`` returns with
``nft -f``.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from orchestrator.lab.ios_cli import PORT_NAMES, Config, parse_entry

TABLE = "ios"


def _address(part: str) -> str:
    """An nft match for ``any`` | ``host A`` | ``A WILDCARD`` as the CLI keeps it ("" for any)."""
    words = part.split()
    if words[0] == "any":
        return ""
    if words[0] == "host":
        return words[1]
    base = int(ipaddress.IPv4Address(words[0]))
    mask = ~int(ipaddress.IPv4Address(words[1])) & 0xFFFFFFFF
    net, maskip = ipaddress.IPv4Address(base & mask), ipaddress.IPv4Address(mask)
    prefix = bin(mask).count("1")
    if mask == (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF:  # contiguous: a prefix
        return f"{net}/{prefix}"
    return f"& {maskip} == {net}"


def _ports(part: str) -> str:
    """An nft port match for ``eq P [P ...]``, ``neq P``, ``gt P``, ``lt P`` or ``range A B``."""
    op, *words = part.split()
    ports = [int(w) if w.isdigit() else PORT_NAMES[w] for w in words]
    if op == "range":
        return f"{ports[0]}-{ports[1]}"
    if op == "eq":
        return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"
    return {"neq": "!= ", "gt": "> ", "lt": "< "}[op] + str(ports[0])


def rule(text: str) -> str:
    """One entry (as ``ios_cli`` keeps it, parsed by its own parser) as an nft rule; ``""`` for a remark."""
    ace = parse_entry(text.split())
    if ace is None:
        return ""
    parts = ["meta nfproto ipv4"]
    if src := _address(ace.src):
        parts.append(f"ip saddr {src}")
    if dst := _address(ace.dst):
        parts.append(f"ip daddr {dst}")
    if ace.protocol != "ip":
        parts.append(f"meta l4proto {ace.protocol}")
    if ace.sport:
        parts.append(f"{ace.protocol} sport {_ports(ace.sport)}")
    if ace.dport:
        parts.append(f"{ace.protocol} dport {_ports(ace.dport)}")
    if "established" in ace.flags:
        parts.append("tcp flags & (ack | rst) != 0")
    parts += ["counter", "return" if ace.action == "permit" else "drop"]
    return " ".join(parts)


def ruleset(config: Config, interfaces: dict[str, str]) -> str:
    """The whole ``inet ios`` table for ``config``; ``interfaces`` maps IOS names to the namespace's
    Linux interface names (an interface it does not map is not enforced: the lab has no such port). With
    no list bound anywhere the table is removed: the namespace filters nothing, as before an incident."""
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    hooks: dict[str, list[str]] = {"input": [], "forward": []}
    used: set[str] = set()
    for name, iface in config.interfaces.items():
        linux = interfaces.get(name)
        if not linux:
            continue
        if iface.acl_in and iface.acl_in in config.acls:
            hooks["input"].append(f'iifname "{linux}" jump acl_{iface.acl_in}')
            hooks["forward"].append(f'iifname "{linux}" jump acl_{iface.acl_in}')
            used.add(iface.acl_in)
        if iface.acl_out and iface.acl_out in config.acls:
            hooks["forward"].append(f'oifname "{linux}" jump acl_{iface.acl_out}')
            used.add(iface.acl_out)
    if not used:
        return "\n".join(lines[:2]) + "\n"
    for acl in sorted(used):
        lines.append(f"    chain acl_{acl} {{")
        lines += [f'        {r} comment "{acl} {e.seq}"' for e in config.acls[acl] if (r := rule(e.text))]
        lines += ["        drop", "    }"]
    for hook, jumps in hooks.items():
        lines += [f"    chain {hook} {{", f"        type filter hook {hook} priority filter - 10; policy accept;"]
        lines += [f"        {j}" for j in jumps]
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def hits(listing: str) -> dict[tuple[str, int], int]:
    """(list, sequence) -> packets matched, from ``nft -j list table inet ios``: each entry's rule carries
    its counter and the comment ``ruleset`` gave it. Anything else in the listing is ignored."""
    try:
        items: Any = json.loads(listing).get("nftables", [])
    except (ValueError, AttributeError):
        return {}
    out: dict[tuple[str, int], int] = {}
    for item in items if isinstance(items, list) else []:
        rule_ = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule_, dict):
            continue
        acl, _, seq = str(rule_.get("comment", "")).rpartition(" ")
        packets = [e["counter"].get("packets", 0) for e in rule_.get("expr", [])
                   if isinstance(e, dict) and isinstance(e.get("counter"), dict)]
        if acl and seq.isdigit() and packets:
            out[(acl, int(seq))] = out.get((acl, int(seq)), 0) + int(packets[0])
    return out
