"""Render an irm host policy as Windows Firewall rules, and compare the rules a host holds with the plan.

A Windows host's policy is its input and output chains (irm never routes through Windows). Each rule
becomes one rule of irm's own group, named ``irm in N: comment`` or ``irm out N: comment``; inbound, the
rule's sources are the remote addresses, its destinations the local ones, its destination ports the
local ports; outbound the other way round. Windows Firewall evaluates block rules before allow rules
whatever their order and is stateful on its own, so the order and the ``established``/``tcp_ack``
qualifiers of a rule carry no meaning there (irm's lockout check refuses a block rule that would match
WinRM).

``render`` gives the arguments of ``community.windows.win_firewall_rule`` for every rule (the apply
loops over them); ``canonical_live`` reduces what ``Get-NetFirewallRule`` and its port and address
filters return for the group to the same form; ``differences`` names every rule missing, not planned
or changed. The role gates the confirm on it and ``irm status --verify`` reports it: what a Windows
host enforces is read from its firewall, never from a file irm wrote there.

Plain Python, no Ansible import: irm runs the same code on the controller.
"""

from __future__ import annotations

import ipaddress

NAME_LENGTH = 60  # characters of a rule's comment kept in its Windows name
PROFILES = ["domain", "private", "public"]
_ANY = ("", "any", "*")


def _nets(values):
    return ",".join(str(ipaddress.IPv4Network(str(v), strict=False)) for v in values or [])


def _ports(values):
    return ",".join(str(int(p)) for p in values or [])


def render(policy):
    """The win_firewall_rule arguments of every rule of the policy's input and output chains, in order."""
    if (policy.get("forward") or {}).get("rules"):
        raise ValueError("a Windows host has no forward chain: irm does not route through Windows")
    out = []
    for chain, direction in (("input", "in"), ("output", "out")):
        spec = policy.get(chain) or {}
        if spec.get("default", "accept") != "accept":
            raise ValueError(f"chain {chain}: Windows Firewall rules cannot carry a default of "
                             f"{spec.get('default')}; irm's host policies never drop by default")
        for index, rule in enumerate(spec.get("rules") or []):
            local, remote = ("dst", "src") if direction == "in" else ("src", "dst")
            local_ports, remote_ports = ("dports", "sports") if direction == "in" else ("sports", "dports")
            out.append({
                "name": f"irm {direction} {index}: {str(rule.get('comment') or '')[:NAME_LENGTH]}",
                "direction": direction,
                "action": "allow" if rule.get("action") == "accept" else "block",
                "protocol": rule.get("protocol") or "any",
                "localport": _ports(rule.get(local_ports)),
                "remoteport": _ports(rule.get(remote_ports)),
                "localip": _nets(rule.get(local)),
                "remoteip": _nets(rule.get(remote)),
            })
    return out


def _items(value):
    """A Windows filter value (a string, a list of strings, "Any") as a list of its items."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        out += [p.strip() for p in str(item if item is not None else "").split(",")]
    return [p for p in out if p.lower() not in _ANY]


def _canonical_ports(value):
    out = []
    for item in _items(value):
        low, _, high = item.partition("-")
        if not low.strip().isdigit() or (high and not high.strip().isdigit()):
            out.append(f"not a port: {item}")
            continue
        out.append((int(low), int(high or low)))
    merged = []  # ports as ranges, adjacent ones joined: 4445,4446 and 4445-4446 are the same match
    for low, high in sorted(p for p in out if isinstance(p, tuple)):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in merged] + sorted(p for p in out if isinstance(p, str))


def _canonical_addresses(value):
    nets, other = [], []
    for item in _items(value):
        try:
            if "-" in item:
                low, high = (ipaddress.IPv4Address(a.strip()) for a in item.split("-", 1))
                nets.extend(ipaddress.summarize_address_range(low, high))
            else:  # 198.18.0.2, 198.18.0.0/16 or 198.18.0.0/255.255.0.0, as Windows prints them
                nets.append(ipaddress.IPv4Network(item, strict=False))
        except ValueError:
            other.append(item)  # a keyword (LocalSubnet, DefaultGateway...) irm never writes
    return [str(n) for n in ipaddress.collapse_addresses(nets)] + sorted(other)


def _profiles(value):
    items = {p.lower() for p in _items(value)}
    return "any" if not items or items >= set(PROFILES) else ",".join(sorted(items))


def _canonical(name, direction, action, protocol, localport, remoteport, localip, remoteip, enabled, profile):
    return {"name": str(name), "direction": direction, "action": action,
            "protocol": str(protocol or "any").lower(), "localport": _canonical_ports(localport),
            "remoteport": _canonical_ports(remoteport), "localip": _canonical_addresses(localip),
            "remoteip": _canonical_addresses(remoteip), "enabled": enabled, "profile": _profiles(profile)}


def canonical_planned(policy):
    return sorted((_canonical(r["name"], r["direction"], r["action"], r["protocol"], r["localport"],
                              r["remoteport"], r["localip"], r["remoteip"], True, PROFILES)
                   for r in render(policy)), key=lambda r: r["name"])


def canonical_live(rules):
    """The rules of irm's group as the read task returns them (DisplayName, Direction Inbound/Outbound,
    Action Allow/Block, Enabled, Profile, and the port and address filters' fields)."""
    out = []
    for r in rules or []:
        direction = {"inbound": "in", "outbound": "out"}.get(str(r.get("direction", "")).lower(),
                                                            str(r.get("direction")))
        action = str(r.get("action", "")).lower()
        enabled = str(r.get("enabled", "")).lower() in ("true", "1", "yes")
        out.append(_canonical(r.get("name", ""), direction, action, r.get("protocol"), r.get("local_port"),
                              r.get("remote_port"), r.get("local_address"), r.get("remote_address"), enabled,
                              r.get("profile")))
    return sorted(out, key=lambda r: r["name"])


def _text(rule):
    ports = rule["localport"] if rule["direction"] == "in" else rule["remoteport"]
    peers = rule["remoteip"]
    return (f"{rule['name']} ({rule['direction']} {rule['action']} {rule['protocol']}"
            f"{' ' + ','.join(ports) if ports else ''}{' ' + ','.join(peers) if peers else ''})")


def differences(policy, live_rules, limit=6):
    """What irm's rule group on the host holds beyond or short of the plan, one line per rule."""
    want = {r["name"]: r for r in canonical_planned(policy)}
    got = {}
    out = []
    for rule in canonical_live(live_rules):
        if rule["name"] in got:
            out.append(f"rule {rule['name']} is live twice")
        got[rule["name"]] = rule
    for name in sorted(set(want) | set(got)):
        w, g = want.get(name), got.get(name)
        if g is None:
            out.append(f"rule missing: {_text(w)}")
        elif w is None:
            out.append(f"rule not planned: {_text(g)}")
        else:
            changed = [f"{k} {_show(g[k])} live, {_show(w[k])} planned" for k in w if w[k] != g[k]]
            if changed:
                out.append(f"rule {name}: " + "; ".join(changed))
    return out[:limit] + ([f"and {len(out) - limit} more difference(s)"] if len(out) > limit else [])


def known(live_rules, policies):
    """Compare-and-swap: every rule of the live group is, field for field, a rule of one of the policies."""
    expected = [r for p in policies for r in canonical_planned(p)]
    return all(rule in expected for rule in canonical_live(live_rules))


def _show(value):
    if isinstance(value, list):
        return ",".join(value) or "any"
    return str(value).lower()
