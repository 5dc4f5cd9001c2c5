"""Checks run before anything is applied: critical flows and the operator's management path.

Pure. Each returns a list of one-line problems; an empty list means go.
"""

from __future__ import annotations

from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Area, Host, Inventory, flow_endpoint_is_everything
from orchestrator.core.nodes import execution_node, node_python
from orchestrator.core.posture import (
    Chain,
    Packet,
    Policy,
    area_prefixes,
    flows_through,
    mgmt_ports,
    resolve_endpoint,
)

MAX_FLOW_PORTS = 16


def check_critical_flows(inv: Inventory, area: Area, vectors: list[Vector]) -> list[str]:
    """A flow kept open through the area's isolation (its own, or another area's that reaches into it)
    must be validated, explicit, and no propagation vector."""
    problems = []
    for owner, flow in flows_through(inv, area):
        where = f"critical flow '{flow.name}' of area '{owner.name}'"
        for vec in vectors:
            if flow.protocol == vec.protocol and vec.port in flow.ports:
                problems.append(f"{where}: uses {vec}, a propagation vector of the incident: refused")
        if not flow.validated_by or not flow.validated_at:
            problems.append(f"{where}: not validated (validated_by and validated_at are required)")
        if len(flow.ports) > MAX_FLOW_PORTS:
            problems.append(f"{where}: {len(flow.ports)} ports is not an explicit service (at most "
                            f"{MAX_FLOW_PORTS})")
        for side, endpoints in (("source", flow.sources), ("destination", flow.destinations)):
            for ep in endpoints:
                if flow_endpoint_is_everything(ep):
                    problems.append(f"{where}: {side} '{ep}' is the whole address space")
                elif ep in inv.areas:
                    problems.append(f"{where}: {side} '{ep}' is a whole area; name hosts or sub-areas")
                else:
                    nets = resolve_endpoint(inv, ep)
                    for other in inv.areas.values():
                        prefixes = area_prefixes(other)
                        if prefixes and all(any(p.subnet_of(n) for n in nets) for p in prefixes):
                            problems.append(f"{where}: {side} '{ep}' covers the whole area '{other.name}'")
    return problems


def _path(inv: Inventory, target: Host) -> list[tuple[str, Chain]]:
    """Where a new SOC -> target packet is filtered: the boundaries it crosses, then the target."""
    core = inv.core
    hops: list[tuple[str, Chain]] = []
    if core is not None and target.name != core.name:
        hops.append((core.name, "forward"))
    if target.kind == "internet" and inv.edge is not None:
        hops.append((inv.edge.name, "forward"))
    if target.kind == "area" and target.area:
        hops.append((inv.areas[target.area].gateway, "forward"))
    if target.boundary_kind == "cisco_ios":
        # IOS filters what reaches the router itself with the list bound in on the interface it enters by:
        # irm's list, rendered from the forward chain
        hops.append((target.name, "forward"))
    hops.append((target.name, "input"))
    return hops


def mgmt_path(inv: Inventory, target: Host) -> tuple[Host | None, list[tuple[str, Chain]]]:
    """Where a new management connection to ``target`` comes from (None: the SOC; else the execution
    node that manages it) and where it is filtered on the way."""
    manager = inv.manager_of(target)
    return manager, (_path(inv, target) if manager is None else _host_path(inv, manager, target))


def through(inv: Inventory, manager: Host | None) -> dict[str, object] | None:
    """How the SOC checks an endpoint that only its manager reaches: a new SSH connection to the node
    (proving SOC -> node), from which the node opens a new one to the endpoint (node -> host)."""
    if manager is None:
        return None
    node = execution_node(manager)
    return {"name": node.name, "ssh": node.ssh_base(), "python": node_python(node)}


def _endpoints(inv: Inventory, host: Host, via: str) -> list[dict[str, object]]:
    hop = through(inv, inv.manager_of(host))
    return [{"host": host.name, "address": str(host.address), "port": port, "via": via,
             **({"through": hop} if hop else {})} for port in mgmt_ports(host)]


def managed_behind(inv: Inventory, boundary: str) -> list[dict[str, object]]:
    """Every management endpoint whose path from its manager (the SOC or an execution node) crosses
    ``boundary``: a boundary it is forwarded through, or the node it comes from."""
    return [e for h in inv.managed_hosts if h.name != boundary
            and boundary in {hop for hop, _ in mgmt_path(inv, h)[1] if hop != h.name}
            for e in _endpoints(inv, h, boundary)]


def reach_targets(inv: Inventory, hosts: list[str]) -> list[dict[str, object]]:
    """What must answer a new connection from its manager before changes on ``hosts`` are confirmed:
    each host's own management port(s) and every host managed through it."""
    own = [e for name in hosts for e in _endpoints(inv, inv.hosts[name], name)]
    return own + [t for name in hosts for t in managed_behind(inv, name)]


def _reply_path(inv: Inventory, target: Host) -> list[tuple[str, Chain]]:
    # (what a router sends itself is not filtered by the lists bound in on its interfaces)
    manager, path = mgmt_path(inv, target)
    forward = [(h, c) for h, c in path if c == "forward" and h != target.name]
    back: list[tuple[str, Chain]] = [(target.name, "output"), *reversed(forward)]
    return back if manager is None else [*back, (manager.name, "input")]


def check_management(inv: Inventory, planned: dict[str, Policy]) -> list[str]:
    """Refuse any policy that would drop SSH (or WinRM) to a managed host from where it is managed (the
    SOC, or the execution node of its area, itself managed from the SOC), or its replies."""
    soc = inv.soc
    if soc is None:
        return ["no SOC host in the inventory: the management path cannot be checked"]
    problems = []
    for target in inv.managed_hosts:
        manager, path = mgmt_path(inv, target)
        origin = manager or soc
        via = f" from {origin.name}" if manager is not None else ""
        for port in mgmt_ports(target):
            new = Packet(src=origin.address, dst=target.address, protocol="tcp", dport=port)
            reply = Packet(src=target.address, dst=origin.address, protocol="tcp", dport=40000, sport=port,
                           established=True)
            for pkt, hops, what in ((new, path, "to"), (reply, _reply_path(inv, target), "from")):
                for host, chain in hops:
                    policy = planned.get(host)
                    if policy is None:
                        continue
                    windows = host == target.name and target.os == "windows"
                    verdict, reason = _verdict(policy, chain, pkt, windows)
                    if verdict != "accept":
                        problems.append(f"would lock the operator out: management {what} {target.name}{via} "
                                        f"(tcp/{port}) dropped at {host} ({chain}: {reason})")
                        break
    return problems


def _verdict(policy: Policy, chain: Chain, pkt: Packet, windows: bool) -> tuple[str, str]:
    """First match wins in nftables; Windows Firewall applies any matching block rule before allows."""
    rules = policy.chain(chain)
    if windows:
        for rule in rules.rules:
            if rule.action == "drop" and rule.matches(pkt):
                return "drop", f"{rule.comment} (Windows Firewall: block rules win)"
    return rules.verdict(pkt)


def _host_path(inv: Inventory, src: Host, dst: Host) -> list[tuple[str, Chain]]:
    """Where a new src -> dst packet is filtered: src's output, the boundaries it is forwarded through,
    dst's input. A boundary that is itself the destination (its own address) receives the packet on its
    input chain and forwards nothing."""
    hops: list[tuple[str, Chain]] = [(src.name, "output")]
    if src.segment is not None and src.segment == dst.segment:
        return [*hops, (dst.name, "input")]

    def side(host: Host) -> list[str]:  # the boundary between a host and the core
        if host.kind == "area" and host.area:
            return [inv.areas[host.area].gateway]
        if host.kind == "internet" and inv.edge is not None:
            return [inv.edge.name]
        return []

    if src.kind == dst.kind == "area" and src.area == dst.area:
        between = side(src)  # two segments of one area: through its gateway only
    else:
        between = [*side(src), *([inv.core.name] if inv.core is not None else []), *reversed(side(dst))]
    for boundary in between:
        if boundary == dst.name:
            break
        if boundary != src.name:
            hops.append((boundary, "forward"))
    hops.append((dst.name, "input"))
    return hops


def allows(inv: Inventory, planned: dict[str, Policy], source: str, target: str, port: int) -> bool:
    """Whether the policies let a new TCP connection from ``source`` to ``target``:``port`` through."""
    src, dst = inv.hosts[source], inv.hosts[target]
    pkt = Packet(src=src.address, dst=dst.address, protocol="tcp", dport=port)
    for host, chain in _host_path(inv, src, dst):
        policy = planned.get(host)
        if policy is not None and _verdict(policy, chain, pkt, host == dst.name and dst.os == "windows")[0] != "accept":
            return False
    return True
