"""Render an irm boundary policy as Cisco IOS configuration: one extended access list owned by irm, bound
``in`` on every routed interface the inventory names, and the configuration lines that put it in place.

A boundary's policy filters routed traffic (its forward chain, first match, then its default). On IOS a
routed packet enters by exactly one interface, so the same list bound ``in`` on every routed interface
sees each packet once, in the policy's order. IOS access lists are stateless: a rule for replies
(``established``) becomes ``established`` for TCP (ACK or RST set) and, for UDP, the reply's own ports
(a flow's replies are declared with their source ports); the general "established connections" rule
covers TCP only. The device's own traffic (input and output chains) is not rendered: irm's boundary
policies never filter it, and a policy that does is refused, naming the chain.

Make before break (``plan``): the list's name carries a digest of its entries (``IRM-GW-X-1A2B3C4D``),
so a change writes the new list whole (cisco.ios.ios_acls, state replaced, naming irm's list only), binds
it on each interface (ios_acl_interfaces, state replaced on irm's interfaces, keeping the device's own
bindings; rebinding is one command, atomic on IOS) and only then deletes irm's previous lists. No packet
ever meets a bound list that is half written, or a binding to a list just deleted (which IOS reads as
"permit everything"). Lists irm does not own are never named, so never touched.

Plain Python over the policy alone, with every value checked; the same text is what the device prints
back (``show access-lists``), so the independent read-back compares strings.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

PREFIX = "IRM-"
# The port names IOS prints in access lists (``eq www``); irm writes numbers and reads both.
PORT_NUMBERS = {"ftp": 21, "telnet": 23, "smtp": 25, "domain": 53, "tftp": 69, "www": 80, "pop3": 110,
                "sunrpc": 111, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138, "netbios-ss": 139, "snmp": 161,
                "bgp": 179, "syslog": 514}
_PORT_OPS = ("eq", "neq", "gt", "lt", "range")
_ACTIONS = {"accept": "permit", "drop": "deny"}


class IosPolicyError(ValueError):
    """The policy cannot be rendered for IOS; the message names the chain, rule and field."""


def acl_name(host: str, aces: list[str]) -> str:
    """irm's list for this boundary and these entries: ``IRM-<HOST>-<8 hex of their SHA-1>``. The name
    follows what the list enforces, not the policy's label: a new label over the same entries changes
    nothing on the device."""
    tail = hashlib.sha1("\n".join(aces).encode()).hexdigest()[:8].upper()
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
    unknown = sorted(set(rule) - {"action", "src", "dst", "protocol", "dports", "sports", "established", "tcp_ack",
                                  "comment"})
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
    established = bool(rule.get("established") or rule.get("tcp_ack"))  # IOS: ACK or RST set, stateless
    if rule.get("tcp_ack") and protocol != "tcp":
        raise IosPolicyError(f"{where}: tcp_ack needs protocol tcp")
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
        aces.append("permit ip any any")
    elif not aces:
        aces.append("deny ip any any")  # IOS reads a list with no entry as "permit everything"
    return aces  # after a drop default's last entry, IOS's own implicit deny


def _side(words: list[str], i: int) -> tuple[dict[str, Any], int]:
    """One address (``any``, ``host A``, ``A W``) and its optional ``eq P`` from the renderer's own text."""
    if words[i] == "any":
        side: dict[str, Any] = {"any": True}
        i += 1
    elif words[i] == "host":
        side, i = {"host": words[i + 1]}, i + 2
    else:
        side, i = {"address": words[i], "wildcard_bits": words[i + 1]}, i + 2
    if i < len(words) and words[i] == "eq":
        side["port_protocol"] = {"eq": words[i + 1]}
        i += 2
    return side, i


def structured(name: str, aces: list[str]) -> list[dict[str, Any]]:
    """``aces`` (this module's text) as cisco.ios.ios_acls' ``config``: one extended list, entries 10, 20..."""
    out = []
    for n, ace in enumerate(aces):
        words = ace.split()
        entry: dict[str, Any] = {"sequence": 10 * (n + 1), "grant": words[0], "protocol": words[1]}
        entry["source"], i = _side(words, 2)
        entry["destination"], i = _side(words, i)
        if words[i:] == ["established"]:
            entry["protocol_options"] = {"tcp": {"established": True}}
        elif words[i:]:
            raise IosPolicyError(f"entry '{ace}': unexpected '{' '.join(words[i:])}'")
        out.append(entry)
    return [{"afi": "ipv4", "acls": [{"name": name, "acl_type": "extended", "aces": out}]}]


def plan(host: str, policy: Any, *, interfaces: list[str], live_acls: dict[str, list[str]],
         live_bindings: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What cisco.ios' resource modules must do, make before break, to put the policy in place:
    ``acls`` (ios_acls, state replaced: irm's new list only), ``bindings`` (ios_acl_interfaces, state
    replaced, on irm's interfaces only: each keeps the device's own bindings and gets irm's list ``in``),
    ``delete`` (ios_acls, state deleted: irm's previous lists only). Each is empty when nothing is to
    do; ``arm`` names the first step that changes the device, which opens the revert timer.
    ``live_acls``: list -> its entries' text; ``live_bindings``: interface -> {direction: list}."""
    aces = render(host, policy)
    name = acl_name(host, aces) if aces else ""
    inbound = {i: b.get("in", "") for i, b in live_bindings.items()}
    theirs = {i: b for i, b in inbound.items() if i in interfaces and b and not owned(b, host)}
    if theirs and name:
        raise IosPolicyError("; ".join(f"interface {i} has {b} bound in, not irm's: irm will not replace it"
                                       for i, b in sorted(theirs.items())))
    acls = structured(name, aces) if aces and live_acls.get(name) != aces else []
    bindings = []
    for iface in interfaces:
        have = live_bindings.get(iface, {})
        want = {d: b for d, b in have.items() if b and not owned(b, host)}
        if name:
            want["in"] = name
        if want != {d: b for d, b in have.items() if b}:
            groups = [{"name": b, "direction": d} for d, b in sorted(want.items())]
            bindings.append({"name": iface, **({"access_groups": [{"afi": "ipv4", "acls": groups}]} if groups else {})})
    old = [a for a in live_acls if owned(a, host) and a != name]
    delete = [{"afi": "ipv4", "acls": [{"name": a} for a in old]}] if old else []
    steps = [s for s, todo in (("acls", acls), ("bindings", bindings), ("delete", delete)) if todo]
    return {"name": name, "aces": aces, "acls": acls, "bindings": bindings, "delete": delete,
            "arm": steps[0] if steps else "", "changes": bool(steps)}


def normalize(entry: str) -> str:
    """An entry's text with IOS's port names as numbers (``eq www`` reads ``eq 80``), as irm writes it."""
    words = entry.split()
    out, in_ports = [], False
    for word in words:
        if in_ports and word in PORT_NUMBERS:
            out.append(str(PORT_NUMBERS[word]))
            continue
        in_ports = word in _PORT_OPS or (in_ports and word.isdigit())
        out.append(word)
    return " ".join(out)


def _side_text(side: dict[str, Any]) -> str:
    if side.get("any"):
        words = ["any"]
    elif side.get("host"):
        words = ["host", str(side["host"])]
    else:
        words = [str(side.get("address")), str(side.get("wildcard_bits"))]
    ports = side.get("port_protocol") or {}
    if set(ports) - {"eq"}:
        words.append("?")  # a form irm never writes: the entry compares unequal and is rewritten
    if ports.get("eq"):
        words += ["eq", str(ports["eq"])]
    return " ".join(words)


def from_gathered(acls: Any, bindings: Any) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """cisco.ios' gathered ``acls`` and ``acl_interfaces`` facts as ``plan`` reads them: each IPv4 list's
    entries in this module's text (an entry in a form irm never writes reads as ``?``), and each
    interface's bindings by direction."""
    lists: dict[str, list[str]] = {}
    for afi in acls or []:
        if afi.get("afi") != "ipv4":
            continue
        for acl in afi.get("acls") or []:
            texts = []
            for ace in acl.get("aces") or []:
                if "grant" not in ace:
                    continue  # a remark
                known = {"sequence", "grant", "protocol", "source", "destination", "protocol_options"}
                options = ace.get("protocol_options") or {}
                if set(ace) - known or options not in ({}, {"tcp": {"established": True}}):
                    texts.append("?")
                    continue
                words = [str(ace["grant"]), str(ace.get("protocol") or "ip"), _side_text(ace.get("source") or {}),
                         _side_text(ace.get("destination") or {})]
                texts.append(normalize(" ".join(words + (["established"] if options else []))))
            lists[str(acl.get("name"))] = texts
    bound: dict[str, dict[str, str]] = {}
    for iface in bindings or []:
        groups = bound.setdefault(str(iface.get("name")), {})
        for afi in iface.get("access_groups") or []:
            if afi.get("afi") == "ipv4":
                groups.update({str(a["direction"]): str(a["name"]) for a in afi.get("acls") or []})
    return lists, bound


# -- the device's own words: what ``show`` prints, and the lines one configuration session sends ----------

_ENTRY = re.compile(r"^\s+(\d+)\s+(.*?)(?:\s+\((\d+) match(?:es)?\))?\s*$")
_LIST = re.compile(r"^(Standard|Extended) IP access list (\S+)\s*$")
_GROUP = re.compile(r"^\s+ip access-group (\S+) (in|out)\s*$")


def parse_access_lists(text: str) -> dict[str, list[tuple[int, str]]]:
    """``show access-lists`` as IOS prints it, line by line: each list's (sequence, entry text); a hit
    count ("(12 matches)") is not part of the entry."""
    acls: dict[str, list[tuple[int, str]]] = {}
    current = None
    for line in text.splitlines():
        head = _LIST.match(line)
        if head:
            current = acls.setdefault(head.group(2), [])
            continue
        entry = _ENTRY.match(line)
        if entry and current is not None:
            current.append((int(entry.group(1)), entry.group(2)))
    return acls


def parse_matches(text: str) -> dict[tuple[str, int], int]:
    """(list, sequence) -> the packets the entry matched, as ``show access-lists`` prints it (an entry
    that matched none prints no count)."""
    out: dict[tuple[str, int], int] = {}
    current = None
    for line in text.splitlines():
        head = _LIST.match(line)
        if head:
            current = head.group(2)
            continue
        entry = _ENTRY.match(line)
        if entry and current is not None:
            out[(current, int(entry.group(1)))] = int(entry.group(3) or 0)
    return out


def parse_bindings(text: str) -> dict[str, dict[str, str]]:
    """``show running-config | include ^interface|ip access-group``: interface -> {direction: list}."""
    out: dict[str, dict[str, str]] = {}
    iface = ""
    for line in text.splitlines():
        if line.startswith("interface "):
            iface = line.split(None, 1)[1].strip()
            out.setdefault(iface, {})
        m = _GROUP.match(line)
        if m and iface:
            out[iface][m.group(2)] = m.group(1)
    return out


def texts(acls: dict[str, list[tuple[int, str]]]) -> dict[str, list[str]]:
    """Each list's entries as ``plan`` reads them (port names as numbers)."""
    return {name: [normalize(t) for _, t in entries] for name, entries in acls.items()}


def known(host: str, policies: list[Any], interfaces: list[str], live_acls: dict[str, list[str]],
          live_bindings: dict[str, dict[str, str]]) -> bool:
    """Compare-and-swap: everything of irm's on the device comes from one of ``policies``. Either the
    device holds exactly the rendering of one (irm's list and bindings; none of irm's at all for a policy
    that filters nothing), or every list of irm's it holds or binds carries the name of one of theirs
    (the name is the digest of the list's entries): drift of irm's own list (an entry edited, a binding
    removed), which the apply repairs. A list of irm's for any other policy, another journal's or
    another SOC machine's, is not known."""
    if any(not plan(host, p, interfaces=interfaces, live_acls=live_acls, live_bindings=live_bindings)["changes"]
           for p in policies):
        return True
    names = {acl_name(host, render(host, p)) for p in policies}
    held = {n for n in live_acls if owned(n, host)}
    held |= {n for groups in live_bindings.values() for n in groups.values() if owned(n, host)}
    return bool(held) and held <= names


def cli_lines(planned: dict[str, Any], live: dict[str, list[tuple[int, str]]],
              live_bindings: dict[str, dict[str, str]]) -> list[str]:
    """The configuration lines that carry out ``planned`` (``plan``'s result) in one session, make before
    break: irm's list (a list of irm's that drifted is repaired entry by entry, never deleted while
    bound), then each interface's binding (one ``ip access-group`` replaces the list bound in that
    direction), then irm's previous lists deleted. Empty when nothing is to do."""
    lines: list[str] = []
    name = planned["name"]
    if planned["acls"]:
        want = {10 * (i + 1): ace for i, ace in enumerate(planned["aces"])}
        have = {seq: normalize(text) for seq, text in live.get(name, [])}
        lines.append(f"ip access-list extended {name}")
        lines += [f"no {seq}" for seq, text in have.items() if want.get(seq) != text]
        lines += [f"{seq} {ace}" for seq, ace in want.items() if have.get(seq) != ace]
        lines.append("exit")
    for iface in planned["bindings"]:
        want_groups = {a["direction"]: a["name"] for g in iface.get("access_groups", []) for a in g["acls"]}
        have_groups = live_bindings.get(iface["name"], {})
        lines.append(f"interface {iface['name']}")
        for direction in ("in", "out"):
            if want_groups.get(direction) and want_groups[direction] != have_groups.get(direction):
                lines.append(f"ip access-group {want_groups[direction]} {direction}")
            elif have_groups.get(direction) and direction not in want_groups:
                lines.append(f"no ip access-group {have_groups[direction]} {direction}")
        lines.append("exit")
    lines += [f"no ip access-list extended {a['name']}" for afi in planned["delete"] for a in afi["acls"]]
    return lines
