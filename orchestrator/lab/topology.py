"""Turn an inventory into the lab's wiring plan: namespaces, bridges, veth links, addresses, routes.

Pure (no I/O). The plan is the contract between ``lab up`` and ``lab down``: ``up`` records it before
creating anything, ``down`` removes everything in it even when ``up`` died half-way.

Shape (every boundary a namespace acting as router + nftables firewall):

    SOC (root ns) --- core --- edge --- [internet segment: bridge in edge] --- internet hosts
                       |  \\--- gateway of area A --- [one bridge per segment] --- area hosts
                       \\------ gateway of area B --- ...
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from pydantic import BaseModel, ConfigDict

from orchestrator.core.errors import LabError
from orchestrator.core.inventory import LAB_SPACE, Host, Inventory, LabSettings, core_side


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetNs(_Model):
    name: str
    host: str
    router: bool


class Bridge(_Model):
    ns: str
    name: str
    address: IPv4Interface


class Link(_Model):
    """A veth pair. ``a_ns`` None is the root namespace (the SOC)."""

    a_ns: str | None
    a_if: str
    a_address: IPv4Interface | None = None
    a_bridge: str | None = None
    b_ns: str
    b_if: str
    b_address: IPv4Interface


class Route(_Model):
    """A route; ``via`` None is an ``unreachable`` route (the SOC's, to an area it reaches only through
    the area's execution node): it outlives the SOC's link, so ``lab down`` removes it by name."""

    ns: str | None
    prefix: IPv4Network
    via: IPv4Address | None


class LabPlan(_Model):
    lab: str
    state_dir: str
    prefixes: list[IPv4Network]
    namespaces: list[NetNs]
    bridges: list[Bridge]
    links: list[Link]
    routes: list[Route]

    @property
    def root_ifaces(self) -> list[str]:
        return [link.a_if for link in self.links if link.a_ns is None]

    def ns_of(self, host: str) -> str:
        return f"{self.lab}-{host}"


def ns_name(lab: LabSettings, host: str) -> str:
    return f"{lab.name}-{host}"


def _require(inv: Inventory) -> tuple[LabSettings, Host, Host, Host]:
    problems: list[str] = []
    if inv.lab is None:
        raise LabError(f"{inv.source}: group 'all' has no irm_lab_name: this inventory does not describe a lab")
    soc, core, edge = inv.soc, inv.core, inv.edge
    for label, host in (("soc", soc), ("core", core), ("edge", edge)):
        if host is None:
            problems.append(f"{inv.source}: group '{label}' needs one host to build a lab")
    if inv.internet is None:
        problems.append(f"{inv.source}: group 'internet' with irm_prefix is needed to build a lab")
    if problems:
        raise LabError(*problems)
    assert soc and core and edge
    return inv.lab, soc, core, edge


def _check_addressing(inv: Inventory, lab: LabSettings) -> None:
    problems: list[str] = []
    where = f"{inv.source}: group 'all', key 'irm_lab_prefixes'"
    for prefix in lab.prefixes:
        if not prefix.subnet_of(LAB_SPACE):
            problems.append(f"{where}: {prefix} is outside {LAB_SPACE}, the only space the lab may use")

    def inside(addr: IPv4Address | IPv4Network) -> bool:
        net = addr if isinstance(addr, IPv4Network) else IPv4Network(f"{addr}/32")
        return any(net.subnet_of(p) for p in lab.prefixes)

    for host in inv.hosts.values():
        if host.kind == "other":
            problems.append(f"{inv.source}: host '{host.name}' is in no lab group (soc, core, edge, gateways, "
                            "internet or an area)")
        if host.os != "linux" and host.kind != "soc":
            problems.append(f"{inv.source}: host '{host.name}', key 'irm_os': the lab builds Linux namespaces only")
        if not inside(host.address):
            problems.append(f"{inv.source}: host '{host.name}': {host.address} is outside irm_lab_prefixes")
        if host.uplink is not None and not inside(host.uplink.network):
            problems.append(f"{inv.source}: host '{host.name}', key 'irm_uplink': {host.uplink} is outside "
                            "irm_lab_prefixes")
    for seg in inv.segments:
        if not inside(seg.prefix):
            problems.append(f"{inv.source}: group '{seg.group}': {seg.prefix} is outside irm_lab_prefixes")
    if inv.internet and not inside(inv.internet.prefix):
        problems.append(f"{inv.source}: group 'internet': {inv.internet.prefix} is outside irm_lab_prefixes")
    dirs: dict[str, str] = {}
    for host in inv.managed_hosts:
        if host.state_dir in dirs:
            problems.append(f"{inv.source}: host '{host.name}', key 'irm_host_state_dir': {host.state_dir} is "
                            f"also the state directory of '{dirs[host.state_dir]}' (namespaces share the filesystem)")
        dirs[host.state_dir] = host.name
    if problems:
        raise LabError(*problems)


def _check_ios(inv: Inventory, bridges: list[Bridge], ns: Callable[[str], str]) -> None:
    """The lab emulates IOS on the edge and gateways: the device's interfaces, in order, are its uplink
    to the core, then one per segment."""
    problems = []
    for host in inv.hosts.values():
        if host.boundary_kind != "cisco_ios":
            continue
        where = f"{inv.source}: host '{host.name}', key 'irm_ios_interfaces'"
        if host.kind not in ("edge", "gateway"):
            problems.append(f"{inv.source}: host '{host.name}': the lab emulates IOS on the edge and gateways only")
            continue
        links = 1 + sum(1 for b in bridges if b.ns == ns(host.name))
        if len(host.ios_interfaces) != links:
            problems.append(f"{where}: the lab wires {links} interface(s) (the uplink, then one per segment), "
                            f"not {len(host.ios_interfaces)}")
    if problems:
        raise LabError(*problems)


def _iface(address: IPv4Address, network: IPv4Network) -> IPv4Interface:
    return IPv4Interface(f"{address}/{network.prefixlen}")


def plan_lab(inv: Inventory) -> LabPlan:
    lab, soc, core, edge = _require(inv)
    _check_addressing(inv, lab)
    internet = inv.internet
    assert internet is not None and soc.uplink is not None

    def ns(host: str) -> str:
        return ns_name(lab, host)

    routers = {core.name, edge.name, *(g.name for g in inv.gateways)}
    namespaces = [NetNs(name=ns(h.name), host=h.name, router=h.name in routers) for h in inv.managed_hosts]
    bridges: list[Bridge] = []
    links: list[Link] = []
    routes: list[Route] = []
    connected: dict[str, list[IPv4Network]] = {}

    def add_link(link: Link) -> None:
        links.append(link)
        connected.setdefault(link.b_ns, []).append(link.b_address.network)
        if link.a_ns and link.a_address:
            connected.setdefault(link.a_ns, []).append(link.a_address.network)

    # SOC <-> core: the management path starts here.
    add_link(Link(a_ns=None, a_if=f"{lab.name}-soc", a_address=soc.uplink, b_ns=ns(core.name), b_if="soc0",
                  b_address=_iface(core_side(soc.uplink), soc.uplink.network)))
    for prefix in lab.prefixes:
        routes.append(Route(ns=None, prefix=prefix, via=core_side(soc.uplink)))

    # core <-> each boundary; the boundary routes the lab back through the core.
    for i, boundary in enumerate([edge, *inv.gateways]):
        assert boundary.uplink is not None
        add_link(Link(a_ns=ns(core.name), a_if=f"d{i}",
                      a_address=_iface(core_side(boundary.uplink), boundary.uplink.network),
                      b_ns=ns(boundary.name), b_if="up0", b_address=boundary.uplink))
        for prefix in lab.prefixes:
            routes.append(Route(ns=ns(boundary.name), prefix=prefix, via=core_side(boundary.uplink)))

    def attach_segment(router: Host, br: str, prefix: IPv4Network, gateway: IPv4Address,
                       members: tuple[str, ...], port_base: int) -> None:
        bridges.append(Bridge(ns=ns(router.name), name=br, address=_iface(gateway, prefix)))
        connected.setdefault(ns(router.name), []).append(prefix)
        for k, member in enumerate(members):
            host = inv.hosts[member]
            add_link(Link(a_ns=ns(router.name), a_if=f"p{port_base + k}", a_bridge=br, b_ns=ns(member),
                          b_if="eth0", b_address=_iface(host.address, prefix)))
            for lab_prefix in lab.prefixes:
                routes.append(Route(ns=ns(member), prefix=lab_prefix, via=gateway))

    attach_segment(edge, "br0", internet.prefix, internet.gateway_address, internet.hosts, 0)
    for prefix in (internet.prefix,):
        routes.append(Route(ns=ns(core.name), prefix=prefix, via=edge.address))

    for gw in inv.gateways:
        port = 0
        segments = [s for a in inv.areas.values() if a.gateway == gw.name for s in a.segments]
        for j, seg in enumerate(segments):
            attach_segment(gw, f"br{j}", seg.prefix, seg.gateway_address, seg.hosts, port)
            port += len(seg.hosts)
            routes.append(Route(ns=ns(core.name), prefix=seg.prefix, via=gw.address))

    # An area run by an execution node is reached from the SOC through that node only (a subsidiary whose
    # WAN routes nothing from the SOC but its jump host): the SOC has no route to its segments, only to
    # the node. Between areas and to the Internet, traffic flows as everywhere else.
    for area in inv.areas.values():
        node = inv.node_of(area.name)
        if node is None:
            continue
        for seg in area.segments:
            routes.append(Route(ns=None, prefix=seg.prefix, via=None))
        if node.area == area.name:
            routes.append(Route(ns=None, prefix=IPv4Network(f"{node.address}/32"), via=core_side(soc.uplink)))

    _check_ios(inv, bridges, ns)

    # A route equal to a connected prefix would clash with the kernel's own route: drop it.
    kept = [r for r in routes if r.ns is None or r.prefix not in connected.get(r.ns, [])]
    return LabPlan(lab=lab.name, state_dir=lab.state_dir, prefixes=list(lab.prefixes), namespaces=namespaces,
                   bridges=bridges, links=links, routes=kept)
