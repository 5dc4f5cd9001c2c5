"""What the emulated IOS device's access lists do to real packets: its running-config translated into
one nftables table (``inet ios``) in the device's namespace, so the lab's traffic and its worm meet the
access lists exactly as configured.

IOS semantics kept: an access list bound ``in`` on an interface filters every packet arriving on it (to
be routed, or for the device itself); bound ``out``, every routed packet leaving by it (not the
device's own). Entries match first to last; a permit lets the packet on to the next check, a deny drops
it, and a list that matches nothing denies (the implicit ``deny ip any any``). A list bound but not
defined filters nothing, as on IOS. ``established`` matches TCP segments with ACK or RST; ``log`` and
remarks change nothing here. Pure function: the lab's server loads what it returns with ``nft -f``.
"""

from __future__ import annotations

import ipaddress

from orchestrator.lab.ios_cli import PORT_NAMES, Config

TABLE = "ios"


def _address(words: list[str], i: int) -> tuple[str, int]:
    """An nft match for ``any`` | ``host A`` | ``A WILDCARD`` at words[i] (empty for any), next index."""
    if words[i] == "any":
        return "", i + 1
    if words[i] == "host":
        return words[i + 1], i + 2
    base = int(ipaddress.IPv4Address(words[i]))
    mask = ~int(ipaddress.IPv4Address(words[i + 1])) & 0xFFFFFFFF
    net, maskip = ipaddress.IPv4Address(base & mask), ipaddress.IPv4Address(mask)
    prefix = bin(mask).count("1")
    if mask == (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF:  # contiguous: a prefix
        return f"{net}/{prefix}", i + 2
    return f"& {maskip} == {net}", i + 2


def _port(word: str) -> int:
    return int(word) if word.isdigit() else PORT_NAMES[word]


def _ports(words: list[str], i: int) -> tuple[str, int]:
    if i >= len(words) or words[i] not in ("eq", "neq", "gt", "lt", "range"):
        return "", i
    op = words[i]
    if op == "range":
        return f"{_port(words[i + 1])}-{_port(words[i + 2])}", i + 3
    j, ports = i + 1, []
    while j < len(words) and (words[j].isdigit() or words[j] in PORT_NAMES):
        ports.append(_port(words[j]))
        j += 1
        if op != "eq":
            break
    if op == "eq":
        return (str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"), j
    return {"neq": "!= ", "gt": "> ", "lt": "< "}[op] + str(ports[0]), j


def rule(text: str) -> str:
    """One entry (as ``ios_cli`` keeps it) as an nft rule; ``""`` for a remark."""
    words = text.split()
    if words[0] == "remark":
        return ""
    action, proto = words[0], words[1]
    src, i = _address(words, 2)
    sport, i = _ports(words, i) if proto in ("tcp", "udp") else ("", i)
    dst, i = _address(words, i)
    dport, i = _ports(words, i) if proto in ("tcp", "udp") else ("", i)
    parts = ["meta nfproto ipv4"]
    if src:
        parts.append(f"ip saddr {src}")
    if dst:
        parts.append(f"ip daddr {dst}")
    if proto != "ip":
        parts.append(f"meta l4proto {proto}")
    if sport:
        parts.append(f"{proto} sport {sport}")
    if dport:
        parts.append(f"{proto} dport {dport}")
    if "established" in words[i:]:
        parts.append("tcp flags & (ack | rst) != 0")
    parts.append("return" if action == "permit" else "drop")
    return " ".join(parts)


def ruleset(config: Config, interfaces: dict[str, str]) -> str:
    """The whole ``inet ios`` table for ``config``; ``interfaces`` maps IOS names to the namespace's
    Linux interface names (an interface it does not map is not enforced: the lab has no such port)."""
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
    for acl in sorted(used):
        lines.append(f"    chain acl_{acl} {{")
        lines += [f"        {r}" for r in (rule(e.text) for e in config.acls[acl]) if r]
        lines += ["        drop", "    }"]
    for hook, jumps in hooks.items():
        lines += [f"    chain {hook} {{", f"        type filter hook {hook} priority filter - 10; policy accept;"]
        lines += [f"        {j}" for j in jumps]
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"
