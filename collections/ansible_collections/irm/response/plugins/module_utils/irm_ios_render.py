"""Render an irm boundary policy as Cisco IOS configuration: one extended access list owned by irm, bound
``in`` on every routed interface the inventory names, and the configuration lines that put it in place.

A boundary's policy filters routed traffic (its forward chain, first match, then its default). On IOS a
routed packet enters by exactly one interface, so the same list bound ``in`` on every routed interface
sees each packet once, in the policy's order. IOS access lists are stateless: a rule for replies
(``established``) becomes ``established`` for TCP (ACK or RST set) and, for UDP, the reply's own ports
(a flow's replies are declared with their source ports); the general "established connections" rule
covers TCP only. The device's own traffic (input and output chains) is not rendered: irm's boundary
policies never filter it, and a policy that does is refused, naming the chain.

Make before break: the list's name carries the policy's fingerprint (``IRM-GW-X-1A2B3C4D``), so a
change writes the new list whole, binds it on each interface (one command each, atomic on IOS) and only
then deletes irm's previous lists. No packet ever meets a bound list that is half written, or a binding
to a list just deleted (which IOS reads as "permit everything"). Lists irm does not own are never
named, so never touched.

Plain Python over the policy alone, with every value checked; the same text is what the device prints
back (``show access-lists``), so the independent read-back compares strings.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

PREFIX = "IRM-"
_ACTIONS = {"accept": "permit", "drop": "deny"}


class IosPolicyError(ValueError):
    """The policy cannot be rendered for IOS; the message names the chain, rule and field."""


def acl_name(host: str, fingerprint: str) -> str:
    """irm's list for this boundary and policy: ``IRM-<HOST>-<8 hex of the fingerprint>``."""
    tail = fingerprint.rsplit("-", 1)[-1][:8].upper()
    if not re.fullmatch(r"[0-9A-F]{8}", tail):
        raise IosPolicyError(f"fingerprint '{fingerprint}' does not end in 8 hex digits")
    return f"{PREFIX}{_base(host)}-{tail}"


def owned(name: str, host: str) -> bool:
    """One of irm's lists for this boundary (any policy)."""
    return re.fullmatch(re.escape(f"{PREFIX}{_base(host)}-") + r"[0-9A-F]{8}", name) is not None


def _base(host: str) -> str:
    """The boundary's name as IOS list names allow it."""
    return re.sub(r"[^A-Z0-9-]", "-", host.upper()).strip("-")[:40] or "HOST"


def _address(net: Any, where: str) -> str:
    try:
        n = ipaddress.IPv4Network(str(net), strict=False)
    except ValueError:
        raise IosPolicyError(f"{where}: '{net}' is not an IPv4 network") from None
    if n.prefixlen == 0:
        return "any"
    if n.prefixlen == 32:
        return f"host {n.network_address}"
    return f"{n.network_address} {n.hostmask}"


def _port_list(items: Any, where: str) -> list[int]:
    if not isinstance(items, list):
        raise IosPolicyError(f"{where}: expected a list of ports")
    for p in items:
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
            raise IosPolicyError(f"{where}: '{p}' is not a port (an integer in 0..65535)")
    return list(items)


def entries(rule: dict[str, Any], where: str) -> list[str]:
    """One policy rule as IOS access-control entries (one per source, destination and port)."""
    unknown = sorted(set(rule) - {"action", "src", "dst", "protocol", "dports", "sports", "established", "comment"})
    if unknown:
        raise IosPolicyError(f"{where}: unknown field(s) {', '.join(unknown)}")
    action = _ACTIONS.get(rule.get("action", ""))
    if action is None:
        raise IosPolicyError(f"{where}.action: '{rule.get('action')}' is not one of accept, drop")
    protocol = rule.get("protocol")
    if protocol not in (None, "tcp", "udp"):
        raise IosPolicyError(f"{where}.protocol: '{protocol}' is not one of tcp, udp")
    dports = _port_list(rule.get("dports") or [], f"{where}.dports")
    sports = _port_list(rule.get("sports") or [], f"{where}.sports")
    if (dports or sports) and protocol is None:
        raise IosPolicyError(f"{where}: ports need a protocol (tcp or udp)")
    established = bool(rule.get("established"))
    if established and protocol is None:
        protocol = "tcp"  # stateless: replies of TCP connections only (see the module's note)
    srcs = [_address(n, f"{where}.src") for n in rule.get("src") or []] or ["any"]
    dsts = [_address(n, f"{where}.dst") for n in rule.get("dst") or []] or ["any"]
    out = []
    for src in srcs:
        for sport in [f"eq {p}" for p in sports] or [""]:
            for dst in dsts:
                for dport in [f"eq {p}" for p in dports] or [""]:
                    flag = "established" if established and protocol == "tcp" else ""
                    words = [action, protocol or "ip", src, sport, dst, dport, flag]
                    out.append(" ".join(w for w in words if w))
    return out


def render(host: str, policy: Any) -> list[str]:
    """The access list's entries, in order (empty: the policy filters nothing, no list at all)."""
    if not isinstance(policy, dict):
        raise IosPolicyError(f"policy for {host}: expected a mapping")
    for chain in ("input", "output"):
        spec = policy.get(chain) or {}
        if spec.get("rules") or spec.get("default", "accept") != "accept":
            raise IosPolicyError(f"{chain}: an IOS boundary filters routed traffic only; irm does not render "
                                 "rules for the device's own traffic")
    forward = policy.get("forward") or {}
    rules = forward.get("rules") or []
    default = forward.get("default", "accept")
    if default not in _ACTIONS:
        raise IosPolicyError(f"forward.default: '{default}' is not one of accept, drop")
    if not rules and default == "accept":
        return []
    # first match wins: a later copy of an entry can never match, and IOS keeps only the first anyway
    aces = list(dict.fromkeys(ace for i, rule in enumerate(rules) for ace in entries(rule, f"forward.rules[{i}]")))
    if default == "accept":
        aces.append("permit ip any any")  # a drop default is IOS's own implicit deny: nothing to add
    return aces


def lines(host: str, aces: list[str], *, fingerprint: str, interfaces: list[str], live_acls: list[str],
          live_bindings: dict[str, str]) -> list[str]:
    """The configuration lines that put ``aces`` in place, make before break: the new list (unless the
    same list is already there), its binding on every interface, then every other irm list of this
    boundary deleted. ``live_bindings``: interface -> the list bound ``in`` there now. An interface
    where a list irm does not own is bound ``in`` is refused: IOS binds one list per direction, and the
    device's own lists are never touched."""
    name = acl_name(host, fingerprint) if aces else ""
    theirs = {i: b for i, b in live_bindings.items() if i in interfaces and b and not owned(b, host)}
    if theirs and name:
        raise IosPolicyError("; ".join(f"interface {i} has {b} bound in, not irm's: irm will not replace it"
                                       for i, b in sorted(theirs.items())))
    out: list[str] = []
    if aces and name not in live_acls:
        out.append(f"ip access-list extended {name}")
        out += [f"{10 * (i + 1)} {ace}" for i, ace in enumerate(aces)]
        out.append("exit")
    for iface in interfaces:
        bound = live_bindings.get(iface, "")
        if name and bound != name:
            out += [f"interface {iface}", f"ip access-group {name} in", "exit"]
        elif not name and bound and owned(bound, host):
            out += [f"interface {iface}", f"no ip access-group {bound} in", "exit"]
    out += [f"no ip access-list extended {old}" for old in live_acls if owned(old, host) and old != name]
    return out
