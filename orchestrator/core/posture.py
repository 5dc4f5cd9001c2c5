"""Postures and the policies they imply, independent of the kind of boundary that enforces them.

An area moves ``connected -> internet_cut -> isolated``; within it, area hosts get ``vectors_blocked``,
the mobile segments ``blocked`` and each sub-area may become ``quarantined``. ``policies`` turns the
whole containment state into one ``Policy`` per boundary or host: ordered first-match rules per chain
(input, forward, output). A kind (nftables in the lab, later Cisco IOS or Windows Firewall) only renders
and applies a policy. Pure: no I/O.

Rule order at an area gateway (forward chain), first match wins:
  1. management: SOC -> managed host on its management port, and the replies
  2. validated critical flows, and their replies
  3. mobile segments blocked, quarantined sub-areas cut from the rest of the area
  4. isolated area: traffic inside the area passes, anything entering or leaving it is dropped
  5. established connections, then the default (accept)
Drops come before the generic "established" accept, so isolation also cuts connections already open.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Area, CriticalFlow, Host, Inventory, Segment
from orchestrator.core.paths import module_util

if TYPE_CHECKING:
    from orchestrator.core.journal.rows import HostRow

AreaPosture = Literal["connected", "internet_cut", "isolated"]
AREA_ORDER: tuple[AreaPosture, ...] = ("connected", "internet_cut", "isolated")
MGMT_PORTS = {"linux": (22,), "windows": (5985, 5986)}
Chain = Literal["input", "forward", "output"]
CHAINS: tuple[Chain, ...] = ("input", "forward", "output")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["accept", "drop"]
    src: list[IPv4Network] = Field(default_factory=list)  # empty: any
    dst: list[IPv4Network] = Field(default_factory=list)
    protocol: Literal["tcp", "udp"] | None = None
    dports: list[int] = Field(default_factory=list)
    sports: list[int] = Field(default_factory=list)
    established: bool = False  # only packets of established or related connections
    # only TCP segments with ACK set: every segment of a connection but its opening SYN. Stateless, so a
    # session open before the change (seen mid-stream by conntrack) survives; a new connection never matches.
    tcp_ack: bool = False
    comment: str

    def matches(self, pkt: Packet) -> bool:
        if self.src and not any(pkt.src in n for n in self.src):
            return False
        if self.dst and not any(pkt.dst in n for n in self.dst):
            return False
        if self.protocol and self.protocol != pkt.protocol:
            return False
        if self.dports and pkt.dport not in self.dports:
            return False
        if self.sports and pkt.sport not in self.sports:
            return False
        if self.tcp_ack and (pkt.protocol != "tcp" or not pkt.established):
            return False
        return not (self.established and not pkt.established)


class ChainPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    default: Literal["accept", "drop"] = "accept"

    def verdict(self, pkt: Packet) -> tuple[str, str]:
        for rule in self.rules:
            if rule.matches(pkt):
                return rule.action, rule.comment
        return self.default, "default policy"


class Policy(BaseModel):
    """Everything one boundary or host enforces, for the whole containment state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    label: str  # human summary of the posture, e.g. "isolated: subsidiary-x"
    input: ChainPolicy = Field(default_factory=ChainPolicy)
    forward: ChainPolicy = Field(default_factory=ChainPolicy)
    output: ChainPolicy = Field(default_factory=ChainPolicy)

    def chain(self, name: Chain) -> ChainPolicy:
        chain: ChainPolicy = getattr(self, name)
        return chain

    @property
    def empty(self) -> bool:
        """Filters nothing: the host carries no irm table at all, as before the incident."""
        return all(not self.chain(c).rules and self.chain(c).default == "accept" for c in CHAINS)

    @property
    def fingerprint(self) -> str:
        """The digest of what this policy enforces (``absent``: no table), computed by the collection's own
        code, which the host runs again over the live table as nftables lists it: equal fingerprints mean
        equal enforcement, whatever a comment says. Journaled before every apply, compared with the live
        table by the apply itself and by ``irm status --verify``."""
        return str(self.canonical_fingerprint(self.model_dump(mode="json")))

    @staticmethod
    def canonical(policy: dict[str, Any]) -> Any:
        return module_util("irm_nft_host").canonical_policy(policy)

    @staticmethod
    def canonical_fingerprint(policy: dict[str, Any]) -> Any:
        return module_util("irm_nft_host").policy_fingerprint(policy)


@dataclass(frozen=True)
class Packet:
    src: IPv4Address
    dst: IPv4Address
    protocol: Literal["tcp", "udp"]
    dport: int
    sport: int = 40000
    established: bool = False


@dataclass
class AreaState:
    posture: AreaPosture = "connected"
    vectors_blocked: bool = False
    mobile_blocked: bool = False
    quarantined: set[str] = field(default_factory=set)  # qualified sub-area names

    def scopes(self, area: Area) -> dict[str, str]:
        """The journal's view: scope -> posture, every sub-area included (a reconnected one is
        "connected" again)."""
        out = {area.name: self.posture, f"{area.name}:hosts": "vectors_blocked" if self.vectors_blocked else "open"}
        out[f"{area.name}:mobile"] = "blocked" if self.mobile_blocked else "connected"
        for seg in area.sub_areas:
            out[seg.qualified] = "quarantined" if seg.qualified in self.quarantined else "connected"
        return out

    @classmethod
    def from_scopes(cls, area: str, scopes: dict[str, str]) -> AreaState:
        return cls(
            posture=scopes.get(area, "connected"),  # type: ignore[arg-type]
            vectors_blocked=scopes.get(f"{area}:hosts") == "vectors_blocked",
            mobile_blocked=scopes.get(f"{area}:mobile") == "blocked",
            quarantined={s for s, p in scopes.items() if p == "quarantined" and s.startswith(f"{area}/")},
        )


def not_as_planned(rows: Mapping[str, HostRow], planned: dict[str, Policy],
                   hosts: list[str]) -> dict[str, str]:
    """Hosts whose journaled fingerprint (what they last reported enforcing) is not their planned one:
    host -> what they enforce. Hosts never applied, or not reached, are not claimed either way."""
    return {h: str(rows[h]["fingerprint"]) for h in hosts
            if h in rows and rows[h]["fingerprint"] and rows[h]["reach"] != "unreachable"
            and rows[h]["fingerprint"] != planned[h].fingerprint}


def _net(address: IPv4Address) -> IPv4Network:
    return IPv4Network(f"{address}/32")


def area_prefixes(area: Area) -> list[IPv4Network]:
    return [s.prefix for s in area.segments]


def mgmt_ports(host: Host) -> tuple[int, ...]:
    return MGMT_PORTS[host.os]


def resolve_endpoint(inv: Inventory, endpoint: str) -> list[IPv4Network]:
    if endpoint in inv.hosts:
        return [_net(inv.hosts[endpoint].address)]
    for seg in inv.segments:
        if seg.qualified == endpoint:
            return [seg.prefix]
    if endpoint in inv.areas:
        return area_prefixes(inv.areas[endpoint])
    return [IPv4Network(endpoint, strict=True)]


def _mgmt_rules(inv: Inventory, targets: list[Host]) -> list[Rule]:
    """Management to these hosts from where it comes: the SOC, or for a host behind an execution node,
    that node (``Inventory.manager_of``); the node itself is managed from the SOC."""
    soc = inv.soc
    if soc is None or not targets:
        return []
    rules = []
    managers: dict[str, tuple[Host, list[Host]]] = {}
    for h in targets:
        manager = inv.manager_of(h) or soc
        managers.setdefault(manager.name, (manager, []))[1].append(h)
    for manager, managed in managers.values():
        origin = "SOC" if manager is soc else f"execution node {manager.name}"
        for os_name in ("linux", "windows"):
            hosts = [h for h in managed if h.os == os_name]
            if not hosts:
                continue
            ports = list(MGMT_PORTS[os_name])
            dst = [_net(h.address) for h in hosts]
            rules.append(Rule(action="accept", src=[_net(manager.address)], dst=dst, protocol="tcp", dports=ports,
                              comment=f"management: {origin} to {os_name} hosts"))
            # Stateless on purpose: a management session opened before the change (an operator's shell, an
            # Ansible control master) is first seen mid-stream by conntrack as "new"; it must survive. Only
            # segments with ACK set: a rooted host opening a new connection from its port 22 to the SOC
            # sends a bare SYN, which never matches.
            rules.append(Rule(action="accept", src=dst, dst=[_net(manager.address)], protocol="tcp", sports=ports,
                              tcp_ack=True, comment=f"management: replies from {os_name} hosts to the {origin}"))
    return rules


def _flow_rules(inv: Inventory, flow: CriticalFlow) -> list[Rule]:
    src = [n for e in flow.sources for n in resolve_endpoint(inv, e)]
    dst = [n for e in flow.destinations for n in resolve_endpoint(inv, e)]
    return [
        Rule(action="accept", src=src, dst=dst, protocol=flow.protocol, dports=list(flow.ports),
             comment=f"critical flow {flow.name} (owner {flow.owner}, validated by {flow.validated_by})"),
        Rule(action="accept", src=dst, dst=src, protocol=flow.protocol, sports=list(flow.ports), established=True,
             comment=f"critical flow {flow.name}: replies"),
    ]


def _established() -> Rule:
    return Rule(action="accept", established=True, comment="established connections")


def flows_through(inv: Inventory, area: Area) -> list[tuple[Area, CriticalFlow]]:
    """The critical flows an isolated area keeps open: its own, and those other areas declare with a
    source or destination inside it (a flow validated by its owner stays open whichever side is
    isolated), each with the area that declares it."""
    prefixes = area_prefixes(area)
    out = [(area, flow) for flow in area.critical_flows]
    for owner in inv.areas.values():
        if owner.name == area.name:
            continue
        for flow in owner.critical_flows:
            ends = [n for e in (*flow.sources, *flow.destinations) for n in resolve_endpoint(inv, e)]
            if any(n.overlaps(p) for n in ends for p in prefixes):
                out.append((owner, flow))
    return out


def _keeps_open(flow: CriticalFlow, vectors: list[Vector]) -> bool:
    validated = bool(flow.validated_by and flow.validated_at)
    return validated and not any(flow.protocol == v.protocol and v.port in flow.ports for v in vectors)


SENSOR = "worm attempts on "  # the comment of a vector sensor: "worm attempts on tcp/4445 from <sub-area>"


def vector_sensors(seg: Segment, vectors: list[Vector]) -> list[Rule]:
    """The boundary as a sensor: a rule per protocol dropping the incident's vectors from one sub-area,
    placed right before a rule that drops all of that sub-area's traffic anyway (its quarantine, or its
    area's isolation), so it enforces nothing more; its nftables counter (the renderer counts every drop
    on a port) says how many attempts the worm still makes from there."""
    out = []
    for proto in ("tcp", "udp"):
        ports = sorted({v.port for v in vectors if v.protocol == proto})
        if ports:
            label = ", ".join(f"{proto}/{p}" for p in ports)
            out.append(Rule(action="drop", src=[seg.prefix], protocol=proto, dports=ports,
                            comment=f"{SENSOR}{label} from {seg.qualified}"))
    return out


def gateway_policy(inv: Inventory, gateway: Host, states: dict[str, AreaState],
                   vectors: list[Vector] | None = None) -> Policy:
    areas = [a for a in inv.areas.values() if a.gateway == gateway.name]
    rules: list[Rule] = []
    labels = []
    for area in areas:
        st = states.get(area.name, AreaState())
        if st.posture != "isolated" and not st.mobile_blocked and not st.quarantined:
            continue
        hosts = [inv.hosts[h] for h in area.hosts]
        rules += _mgmt_rules(inv, hosts)
        if st.posture == "isolated":
            for _, flow in flows_through(inv, area):
                if _keeps_open(flow, vectors or []):
                    rules += _flow_rules(inv, flow)
        if st.mobile_blocked:
            for seg in area.mobile_segments:
                rules.append(Rule(action="drop", src=[seg.prefix], comment=f"mobile segment {seg.qualified} blocked"))
                rules.append(Rule(action="drop", dst=[seg.prefix], comment=f"mobile segment {seg.qualified} blocked"))
            labels.append(f"mobile blocked: {area.name}")
        for seg in area.segments:
            if seg.qualified in st.quarantined:
                rules += vector_sensors(seg, vectors or [])
                rules.append(Rule(action="drop", src=[seg.prefix], comment=f"sub-area {seg.qualified} quarantined"))
                rules.append(Rule(action="drop", dst=[seg.prefix], comment=f"sub-area {seg.qualified} quarantined"))
                labels.append(f"quarantined: {seg.qualified}")
        if st.posture == "isolated":
            prefixes = area_prefixes(area)
            rules.append(Rule(action="accept", src=prefixes, dst=prefixes, comment=f"inside area {area.name}"))
            for seg in area.segments:
                if seg.qualified not in st.quarantined:
                    rules += vector_sensors(seg, vectors or [])
            rules.append(Rule(action="drop", src=prefixes, comment=f"area {area.name} isolated: leaving"))
            rules.append(Rule(action="drop", dst=prefixes, comment=f"area {area.name} isolated: entering"))
            labels.insert(0, f"isolated: {area.name}")
    if rules:
        rules.append(_established())
    return Policy(host=gateway.name, label="; ".join(labels) or "connected", forward=ChainPolicy(rules=rules))


def edge_policy(inv: Inventory, edge: Host, states: dict[str, AreaState]) -> Policy:
    rules: list[Rule] = []
    cut = []
    for area in inv.areas.values():
        st = states.get(area.name, AreaState())
        if AREA_ORDER.index(st.posture) >= AREA_ORDER.index("internet_cut"):
            prefixes = area_prefixes(area)
            rules.append(Rule(action="drop", src=prefixes, comment=f"area {area.name} cut from the Internet"))
            rules.append(Rule(action="drop", dst=prefixes, comment=f"area {area.name} cut from the Internet"))
            cut.append(area.name)
    if rules:
        rules.append(_established())
    return Policy(host=edge.name, label=f"internet cut: {', '.join(cut)}" if cut else "connected",
                  forward=ChainPolicy(rules=rules))


def host_policy(inv: Inventory, host: Host, vectors: list[Vector], blocked: bool) -> Policy:
    if not blocked:
        return Policy(host=host.name, label="open")
    mgmt = _mgmt_rules(inv, [host])
    # The host talking to itself on its own address (local services, a scanner's safe check) is no
    # propagation; a packet from elsewhere with this source never completes a TCP handshake.
    itself = Rule(action="accept", src=[_net(host.address)], dst=[_net(host.address)],
                  comment="the host's own traffic to itself")
    input_rules = [*([mgmt[0]] if mgmt else []), itself]
    output_rules = [*([mgmt[1]] if mgmt else []), itself]
    if host.runs_jobs:
        # an execution node keeps managing the hosts behind it: its own new connections out to their
        # management ports, and their replies, stay open whatever the vectors are
        managed = [h for h in inv.hosts.values() if (m := inv.manager_of(h)) is not None and m.name == host.name]
        for rule in _mgmt_rules(inv, managed):
            (output_rules if rule.dports else input_rules).insert(0, rule)
    for proto in ("tcp", "udp"):
        ports = sorted({v.port for v in vectors if v.protocol == proto})
        if ports:
            label = ", ".join(f"{proto}/{p}" for p in ports)
            input_rules.append(Rule(action="drop", protocol=proto, dports=ports, comment=f"vector {label} inbound"))
            output_rules.append(Rule(action="drop", protocol=proto, dports=ports, comment=f"vector {label} outbound"))
    return Policy(host=host.name, label="vectors blocked", input=ChainPolicy(rules=input_rules),
                  output=ChainPolicy(rules=output_rules))


def policies(inv: Inventory, vectors: list[Vector], states: dict[str, AreaState]) -> dict[str, Policy]:
    """The policy of every boundary and area host for a containment state."""
    out: dict[str, Policy] = {}
    if inv.edge is not None:
        out[inv.edge.name] = edge_policy(inv, inv.edge, states)
    for gw in inv.gateways:
        out[gw.name] = gateway_policy(inv, gw, states, vectors)
    if inv.core is not None:
        out[inv.core.name] = Policy(host=inv.core.name, label="connected")
    for area in inv.areas.values():
        blocked = states.get(area.name, AreaState()).vectors_blocked
        for name in area.hosts:
            out[name] = host_policy(inv, inv.hosts[name], vectors, blocked)
    return out


def _rule_text(rule: dict[str, Any]) -> str:
    parts = [str(rule.get("action"))]
    for key in ("src", "dst"):
        if rule.get(key):
            parts.append(f"{key} {','.join(rule[key])}")
    if rule.get("protocol"):
        parts.append(str(rule["protocol"]))
    for key in ("dports", "sports"):
        if rule.get(key):
            parts.append(f"{key[:-1]} " + ",".join(str(a) if a == b else f"{a}-{b}" for a, b in rule[key]))
    if rule.get("ct_state"):
        parts.append("ct " + ",".join(rule["ct_state"]))
    if rule.get("tcp_flags"):
        parts.append("tcp flags " + ",".join(rule["tcp_flags"]))
    if rule.get("foreign"):
        parts.append("and " + "; ".join(rule["foreign"])[:120])
    return " ".join(parts)


def windows_differences(planned: Policy, live_rules: list[dict[str, Any]]) -> list[str]:
    """What irm's rule group on a Windows host (as the host read it from Windows Firewall) holds beyond or
    short of the plan, rule by rule: the collection's own comparison, the one that gates the confirm."""
    return list(module_util("irm_win_rules").differences(planned.model_dump(mode="json"), live_rules))


def table_differences(planned: Policy, live: dict[str, Any] | None, limit: int = 6) -> list[str]:
    """What the live irm table (its canonical form, as the host read it from nftables) enforces beyond or
    short of the plan, one line per difference, chain by chain and rule by rule."""
    want = Policy.canonical(planned.model_dump(mode="json"))
    if want is None or live is None:
        return [] if want == live else ["no irm table live" if live is None else "an irm table is live, none planned"]
    out: list[str] = [f"not irm's: {o[:120]}" for o in live.get("other", [])]
    for name in sorted(set(want["chains"]) | set(live.get("chains", {}))):
        w, got = want["chains"].get(name), live.get("chains", {}).get(name)
        if got is None or w is None:
            out.append(f"chain {name} {'missing' if got is None else 'not planned'}")
            continue
        for key in ("type", "hook", "prio", "policy"):
            if w[key] != got.get(key):
                out.append(f"chain {name}: {key} {got.get(key)} live, {w[key]} planned")
        planned_rules, live_rules = [_rule_text(r) for r in w["rules"]], [_rule_text(r) for r in got.get("rules", [])]
        matcher = difflib.SequenceMatcher(a=planned_rules, b=live_rules, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op in ("delete", "replace"):
                out += [f"chain {name}: rule {i + 1} missing ({planned_rules[i]})" for i in range(i1, i2)]
            if op in ("insert", "replace"):
                out += [f"chain {name}: rule not planned at {j + 1} ({live_rules[j]})" for j in range(j1, j2)]
    return out[:limit] + ([f"and {len(out) - limit} more difference(s)"] if len(out) > limit else [])
