"""Validation: the irm schema applied to what ansible-core loaded (``RawInventory``), every problem
found, one line each, naming the group or host and the key at fault, raised together as one
``InventoryError``. Pure: no I/O, no ansible imports.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.core import names
from orchestrator.core.errors import InventoryError
from orchestrator.core.inventory.model import (
    IOS_CONNECTION,
    IOS_NETWORK_OS,
    KNOWN_KEYS,
    Approver,
    Area,
    CostSettings,
    CrisisCell,
    CriticalFlow,
    DetectionSourceSpec,
    DetectionThreshold,
    Host,
    HostKind,
    InternetSegment,
    Inventory,
    LabSettings,
    NotifySettings,
    Segment,
    core_side,
    flow_endpoint_is_everything,
)


@dataclass
class RawGroup:
    name: str
    vars: dict[str, Any]
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


@dataclass
class RawHost:
    name: str
    vars: dict[str, Any]
    own_keys: set[str]
    groups: list[str]
    var_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class RawInventory:
    source: str
    groups: dict[str, RawGroup]
    hosts: dict[str, RawHost]


M = TypeVar("M", bound=BaseModel)


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, where: str, key: str | None, message: str) -> None:
        self.lines.append(f"{where}, key '{key}': {message}" if key else f"{where}: {message}")

    def validate(self, model: type[M], data: Any, where: str, key: str,
                 keys: dict[str, str] | None = None) -> M | None:
        """``keys`` maps a model field to the inventory key it came from, for the message."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                if keys and loc and loc[0] in keys:
                    self.add(where, ".".join([keys[loc[0]], *loc[1:]]), err["msg"])
                    continue
                joined = ".".join(loc)
                self.add(where, f"{key}.{joined}" if joined else key, err["msg"])
            return None

    def parse(self, parser: Callable[[Any], Any], value: Any, where: str, key: str, what: str) -> Any:
        try:
            return parser(str(value))
        except ValueError as exc:
            self.add(where, key, f"{value!r} is not {what} ({exc})")
            return None


def _g(name: str) -> str:
    return f"group '{name}'"


def _h(name: str) -> str:
    return f"host '{name}'"


def build_inventory(raw: RawInventory) -> Inventory:
    """Validate everything and return the model, or raise one ``InventoryError`` listing every problem."""
    p = _Problems()
    _check_keys(raw, p)
    lab = _lab_settings(raw, p)
    internet = _internet(raw, p)
    areas, segment_of = _areas(raw, p)
    hosts = _hosts(raw, areas, segment_of, internet, p)
    _check_boundaries(raw, hosts, p)
    _check_area_gateways(raw, areas, hosts, p)
    _check_execution_nodes(areas, hosts, p)
    _check_addresses(areas, internet, hosts, p)
    _check_overlaps(areas, internet, hosts, p)
    for area in areas.values():
        _check_flows(area, areas, hosts, p)
    for host in hosts.values():
        for check in host.health_checks:
            if check.host is not None and check.host not in hosts:
                p.add(_h(host.name), "irm_health_checks", f"check '{check.name}': '{check.host}' is not a managed host")
    allvars = raw.groups["all"].vars if "all" in raw.groups else {}
    costs = p.validate(CostSettings, {k.removeprefix("irm_"): v for k, v in allvars.items() if k in _COST_KEYS},
                       _g("all"), "irm_costs")
    approvers = _approvers(allvars.get("irm_approvers"), p)
    sources = _detection_sources(allvars.get("irm_detection_sources"), p)
    threshold = p.validate(DetectionThreshold, allvars.get("irm_detection_threshold") or {}, _g("all"),
                           "irm_detection_threshold")
    cell = _crisis_cell(raw, allvars, areas, p)
    notify = p.validate(NotifySettings, allvars.get("irm_notify") or {}, _g("all"), "irm_notify")
    if p.lines:
        raise InventoryError(*(f"{raw.source}: {line}" for line in p.lines))
    return Inventory(source=raw.source, costs=costs or CostSettings(), lab=lab, hosts=hosts, areas=areas,
                     internet=internet, approvers=approvers, detection_sources=sources,
                     detection_threshold=threshold or DetectionThreshold(),
                     crisis_cell=cell if isinstance(cell, CrisisCell) else None,
                     crisis_cell_file=cell if isinstance(cell, str) else None,
                     notify=notify or NotifySettings())


def _crisis_cell(raw: RawInventory, allvars: dict[str, Any], areas: dict[str, Area],
                 p: _Problems) -> CrisisCell | str | None:
    """The directory inline (``irm_crisis_cell``, validated now), or the path of its YAML file
    (``irm_crisis_cell_file``, relative to the inventory's directory; read and validated when used, by
    ``crisis_cell.load``, so a missing file is a preparation finding, not a broken inventory)."""
    inline, file = allvars.get("irm_crisis_cell"), allvars.get("irm_crisis_cell_file")
    if inline is not None and file is not None:
        p.add(_g("all"), "irm_crisis_cell_file", "give irm_crisis_cell or irm_crisis_cell_file, not both")
        return None
    if file is not None:
        base = Path(raw.source) if Path(raw.source).is_dir() else Path(raw.source).parent
        return str(base / str(file))
    if inline is None:
        return None
    cell = p.validate(CrisisCell, inline, _g("all"), "irm_crisis_cell")
    for name in cell.areas if cell else ():
        if name not in areas:
            p.add(_g("all"), f"irm_crisis_cell.areas.{name}", f"no area '{name}' in the inventory")
    return cell


def _detection_sources(value: Any, p: _Problems) -> tuple[DetectionSourceSpec, ...]:
    return tuple(spec for _, spec in _list_of(DetectionSourceSpec, value, "irm_detection_sources",
                                               "{kind, path, filters}", p))


def _list_of(model: type[M], value: Any, key: str, what: str, p: _Problems) -> list[tuple[int, M]]:
    """A group-'all' key holding a list of ``model`` items: (index, item) of each item that validates; a
    problem names the others by their index."""
    if value is None:
        return []
    if not isinstance(value, list):
        p.add(_g("all"), key, f"must be a list of {what}")
        return []
    out = [(i, p.validate(model, item, _g("all"), f"{key}.{i}")) for i, item in enumerate(value)]
    return [(i, item) for i, item in out if item is not None]


_HOST_KEYS = {"os": "irm_os", "address": "ansible_host", "uplink": "irm_uplink", "state_dir": "irm_host_state_dir",
              "av_log": "irm_av_log", "vulnerable": "irm_lab_vulnerable", "services": "irm_lab_services",
              "worm_blocks": "irm_lab_worm_blocks", "health_checks": "irm_health_checks",
              "boundary_kind": "irm_boundary_kind", "ios_interfaces": "irm_ios_interfaces", "login": "ansible_port"}


def _approvers(value: Any, p: _Problems) -> tuple[Approver, ...]:
    out: list[Approver] = []
    for i, approver in _list_of(Approver, value, "irm_approvers", "{name, role, key or key_file}", p):
        if any(a.name == approver.name for a in out):
            p.add(_g("all"), f"irm_approvers.{i}.name", f"'{approver.name}' is listed twice")
        out.append(approver)
    return tuple(out)


_COST_KEYS = ("irm_crisis_cell_size", "irm_crisis_cell_hourly_rate", "irm_remediation_cost_per_host",
              "irm_manual_remediation_cost_per_host", "irm_currency")


def _check_keys(raw: RawInventory, p: _Problems) -> None:
    for group in raw.groups.values():
        for key in sorted(group.vars):
            if key.startswith("irm_") and key not in KNOWN_KEYS:
                p.add(_g(group.name), key, "unknown irm key (misspelt?)")
    for host in raw.hosts.values():
        for key in sorted(host.own_keys):
            if key.startswith("irm_") and key not in KNOWN_KEYS:
                p.add(_h(host.name), key, "unknown irm key (misspelt?)")
        for key, message in sorted(host.var_errors.items()):
            p.add(_h(host.name), key, message)


def _lab_settings(raw: RawInventory, p: _Problems) -> LabSettings | None:
    allvars = raw.groups["all"].vars if "all" in raw.groups else {}
    if "irm_lab_name" not in allvars:
        return None
    data = {
        "name": allvars.get("irm_lab_name"),
        "state_dir": allvars.get("irm_lab_state_dir"),
        "prefixes": allvars.get("irm_lab_prefixes"),
        "worm": allvars.get("irm_lab_worm"),
    }
    return p.validate(LabSettings, data, _g("all"), "irm_lab")


def _internet(raw: RawInventory, p: _Problems) -> InternetSegment | None:
    group = raw.groups.get("internet")
    if group is None:
        return None
    prefix = p.parse(IPv4Network, group.vars.get("irm_prefix"), _g("internet"), "irm_prefix", "an IPv4 prefix")
    if prefix is None:
        return None
    gw = group.vars.get("irm_gateway_address", next(prefix.hosts(), prefix.network_address))
    gw_addr = p.parse(IPv4Address, gw, _g("internet"), "irm_gateway_address", "an IPv4 address")
    if gw_addr is None:
        return None
    return InternetSegment(prefix=prefix, gateway_address=gw_addr, hosts=tuple(group.hosts))


def _areas(raw: RawInventory, p: _Problems) -> tuple[dict[str, Area], dict[str, Segment]]:
    area_groups: dict[str, RawGroup] = {}
    for group in raw.groups.values():
        if not names.looks_like_irm_group(group.name):
            continue
        area = names.parse_area_group(group.name)
        if area is not None:
            area_groups[area] = group
        elif names.parse_segment_group(group.name) is None:
            p.add(
                _g(group.name),
                None,
                "not a valid irm group name (expected area_<area>, subarea_<area>__<name> or "
                "mobile_<area>__<name>, names in lowercase words joined by '_')",
            )

    segments: dict[str, list[Segment]] = {a: [] for a in area_groups}
    segment_of: dict[str, Segment] = {}
    for group in raw.groups.values():
        parsed = names.parse_segment_group(group.name)
        if parsed is None:
            continue
        kind, area, seg_name = parsed
        parent = names.area_group(area)
        if area not in area_groups:
            p.add(_g(group.name), None, f"unknown area '{area}' (there is no group '{parent}')")
            continue
        if parent not in group.parents:
            p.add(_g(group.name), None, f"must be a child of its area group '{parent}'")
        prefix = p.parse(
            lambda v: IPv4Network(v, strict=True), group.vars.get("irm_prefix"),
            _g(group.name), "irm_prefix", "an IPv4 prefix",
        ) if "irm_prefix" in group.vars else None
        if "irm_prefix" not in group.vars:
            p.add(_g(group.name), "irm_prefix", "is missing: every sub-area and mobile segment needs its prefix")
        if prefix is None:
            continue
        gw_raw = group.vars.get("irm_gateway_address", next(prefix.hosts(), prefix.network_address))
        gw = p.parse(IPv4Address, gw_raw, _g(group.name), "irm_gateway_address", "an IPv4 address")
        if gw is None:
            continue
        if gw not in prefix:
            p.add(_g(group.name), "irm_gateway_address", f"{gw} is outside the segment prefix {prefix}")
        seg = Segment(
            name=seg_name, area=area, kind=kind, group=group.name, prefix=prefix,
            gateway_address=gw, hosts=tuple(group.hosts),
        )
        segments[area].append(seg)
        segment_of[group.name] = seg

    areas: dict[str, Area] = {}
    for area, group in area_groups.items():
        where = _g(group.name)
        flows_raw = group.vars.get("irm_critical_flows", []) or []
        flows: list[CriticalFlow] = []
        if not isinstance(flows_raw, list):
            p.add(where, "irm_critical_flows", "must be a list of flows")
            flows_raw = []
        for i, item in enumerate(flows_raw):
            label = item.get("name", i) if isinstance(item, dict) else i
            flow = p.validate(CriticalFlow, item, where, f"irm_critical_flows[{label}]")
            if flow is not None:
                flows.append(flow)
        cost = group.vars.get("irm_downtime_cost_per_hour")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)
                                 or not math.isfinite(cost) or not 0 <= cost <= 1e12):
            p.add(where, "irm_downtime_cost_per_hour", f"{cost!r} is not a number between 0 and 1e12")
            cost = None
        node = group.vars.get("irm_execution_node")
        auto = group.vars.get("irm_auto_contain", "allowed")
        if auto not in ("allowed", "never"):
            p.add(where, "irm_auto_contain", f"{str(auto)[:40]!r} is not 'allowed' or 'never'")
        areas[area] = Area(
            name=area, group=group.name, gateway=str(group.vars.get("irm_gateway", "")),
            segments=tuple(segments[area]), critical_flows=tuple(flows),
            downtime_cost_per_hour=cost, execution_node=str(node) if node else None,
            auto_contain=auto != "never",
        )
    return areas, segment_of


def _host_kind(groups: Iterable[str]) -> HostKind:
    """A host's role; an execution node that sits in an area (a subsidiary's jump host) is an area host
    that also runs jobs (``Host.runs_jobs``)."""
    gs = set(groups)
    for group, kind in (("soc", "soc"), ("core", "core"), ("edge", "edge"), ("gateways", "gateway"),
                        ("internet", "internet")):
        if group in gs:
            return kind  # type: ignore[return-value]
    if any(names.parse_area_group(g) for g in gs):
        return "area"
    return "node" if "execution_nodes" in gs else "other"


def _hosts(
    raw: RawInventory, areas: dict[str, Area], segment_of: dict[str, Segment],
    internet: InternetSegment | None, p: _Problems,
) -> dict[str, Host]:
    hosts: dict[str, Host] = {}
    for rh in raw.hosts.values():
        where = _h(rh.name)
        in_areas = sorted({a for g in rh.groups if (a := names.parse_area_group(g)) and a in areas})
        in_segments = [segment_of[g] for g in rh.groups if g in segment_of]
        kind = _host_kind(rh.groups)
        if len(in_areas) > 1:
            p.add(where, None, f"is in two areas, {' and '.join(repr(a) for a in in_areas)}")
            continue
        if len(in_segments) > 1:
            both = " and ".join(repr(s.qualified) for s in in_segments)
            p.add(where, None, f"is in two segments, {both}")
            continue
        if in_areas and not in_segments:
            p.add(where, None, f"is in area '{in_areas[0]}' but in none of its sub-areas or mobile segments")
            continue
        v = rh.vars
        uplink = None
        if "irm_uplink" in v:
            uplink = p.parse(IPv4Interface, v["irm_uplink"], where, "irm_uplink", "an address/prefix")
        if kind == "soc":
            if uplink is None:
                if "irm_uplink" not in v:
                    p.add(where, "irm_uplink", "is missing: the SOC needs its link to the core (address/prefix)")
                continue
            address = uplink.ip
        else:
            if "ansible_host" not in v:
                p.add(where, "ansible_host", "is missing: irm needs every managed host's IPv4 address")
                continue
            address = p.parse(IPv4Address, v["ansible_host"], where, "ansible_host", "an IPv4 address")
            if address is None:
                continue
        data = {
            "name": rh.name, "kind": kind, "address": address, "uplink": uplink,
            "os": v.get("irm_os", "linux"),
            "area": in_areas[0] if in_areas else None,
            "segment": in_segments[0].qualified if in_segments else None,
            "state_dir": v.get("irm_host_state_dir", "/var/lib/irm"),
            "av_log": v.get("irm_av_log"),
            "vulnerable": v.get("irm_lab_vulnerable", False),
            "services": v.get("irm_lab_services", []) or [],
            "worm_blocks": v.get("irm_lab_worm_blocks", []) or [],
            "health_checks": v.get("irm_health_checks", []) or [],
            "boundary_kind": v.get("irm_boundary_kind", "nftables"),
            "ios_interfaces": v.get("irm_ios_interfaces", []) or [],
        }
        if "execution_nodes" in rh.groups:
            if kind not in ("node", "area"):
                p.add(where, None, f"is a {kind} and in group 'execution_nodes': a node is a host of its own "
                      "or an area host")
                continue
            data["runs_jobs"] = True
            try:
                data["ssh_args"] = shlex.split(str(v.get("ansible_ssh_common_args") or ""))
            except ValueError as exc:
                p.add(where, "ansible_ssh_common_args", f"cannot be split as ssh arguments ({exc})")
                continue
            key = v.get("ansible_ssh_private_key_file")
            data["ssh_args"] = [*(["-i", str(key)] if key else []), *data["ssh_args"]]
            data["node_runner"] = v.get("irm_node_runner")
            data["login"] = {"port": v.get("ansible_port", 22), "user": v.get("ansible_user", "root"),
                             "key_file": str(key or "~/.ssh/id_ed25519")}
        if v.get("irm_boundary_kind") == "cisco_ios":
            data["login"] = {"port": v.get("ansible_port", 22), "user": v.get("ansible_user"),
                             "key_file": v.get("ansible_ssh_private_key_file"),
                             **({"known_hosts": v["irm_ios_known_hosts"]} if "irm_ios_known_hosts" in v else {})}
        if not _boundary_kind_ok(v, kind, where, p):
            continue
        host = p.validate(Host, data, where, "irm", keys=_HOST_KEYS)
        if host is not None:
            hosts[rh.name] = host
    return hosts


def _boundary_kind_ok(v: dict[str, Any], kind: str, where: str, p: _Problems) -> bool:
    """``irm_boundary_kind`` on a boundary only; an IOS boundary is reached over network_cli as cisco.ios
    and names its routed interfaces; ``irm_ios_interfaces`` belongs to IOS boundaries only."""
    boundary = v.get("irm_boundary_kind")
    if boundary is None:
        if "irm_ios_interfaces" in v:
            p.add(where, "irm_ios_interfaces", "belongs to an IOS boundary (irm_boundary_kind: cisco_ios)")
            return False
        return True
    if kind not in ("edge", "gateway", "core"):
        p.add(where, "irm_boundary_kind", f"is for boundaries (edge, gateways, core), not a host of kind '{kind}'")
        return False
    if boundary != "cisco_ios":
        if boundary == "nftables" and "irm_ios_interfaces" in v:  # any other value: the model names it
            p.add(where, "irm_ios_interfaces", "belongs to an IOS boundary (irm_boundary_kind: cisco_ios)")
            return False
        return True
    ok = True
    for key, want in (("ansible_connection", IOS_CONNECTION), ("ansible_network_os", IOS_NETWORK_OS)):
        if str(v.get(key, "")) != want:
            p.add(where, key, f"must be {want} for an IOS boundary (got {v.get(key)!r})")
            ok = False
    if not v.get("irm_ios_interfaces"):
        p.add(where, "irm_ios_interfaces", "is missing: an IOS boundary names the routed interfaces irm binds "
                                           "its access list on")
        ok = False
    for key in ("ansible_user", "ansible_ssh_private_key_file"):
        if not v.get(key):
            p.add(where, key, "is missing: irm's own read-back of an IOS boundary (netmiko) logs in with the "
                              "user and key Ansible uses")
            ok = False
    return ok


def _check_boundaries(raw: RawInventory, hosts: dict[str, Host], p: _Problems) -> None:
    for group in ("soc", "core", "edge"):
        members = [h for h in hosts.values() if h.kind == group]
        if len(members) > 1:
            p.add(_g(group), None, f"must hold one host, not {len(members)} ({', '.join(h.name for h in members)})")
    for host in hosts.values():
        if host.kind in ("edge", "gateway"):
            if host.uplink is None:
                p.add(_h(host.name), "irm_uplink", "is missing: a boundary needs its link to the core")
            elif host.uplink.ip != host.address:
                p.add(_h(host.name), "ansible_host",
                      f"{host.address} must be the boundary's uplink address {host.uplink.ip} (managed in-band)")
            elif host.uplink.ip == core_side(host.uplink):
                p.add(_h(host.name), "irm_uplink",
                      f"{host.uplink} takes the core's side of the link ({core_side(host.uplink)})")
    soc = next((h for h in hosts.values() if h.kind == "soc"), None)
    core = next((h for h in hosts.values() if h.kind == "core"), None)
    if soc and core and soc.uplink and core.address != core_side(soc.uplink):
        p.add(_h(core.name), "ansible_host",
              f"{core.address} must be the core's address on the SOC link, {core_side(soc.uplink)}")


def _check_execution_nodes(areas: dict[str, Area], hosts: dict[str, Host], p: _Problems) -> None:
    for area in areas.values():
        node = area.execution_node
        if node is None:
            continue
        if node not in hosts or not hosts[node].runs_jobs:
            p.add(_g(area.group), "irm_execution_node", f"'{node}' is not a host of group 'execution_nodes'")
        elif hosts[node].os != "linux":
            p.add(_g(area.group), "irm_execution_node", f"'{node}' must run Linux (ansible-runner's worker)")


def _check_area_gateways(raw: RawInventory, areas: dict[str, Area], hosts: dict[str, Host], p: _Problems) -> None:
    for area in areas.values():
        if not area.gateway:
            p.add(_g(area.group), "irm_gateway",
                  "is missing: every area needs the gateway (a host of group 'gateways') that separates it")
        elif area.gateway not in hosts or hosts[area.gateway].kind != "gateway":
            p.add(_g(area.group), "irm_gateway", f"'{area.gateway}' is not a host of group 'gateways'")


def _check_addresses(
    areas: dict[str, Area], internet: InternetSegment | None, hosts: dict[str, Host], p: _Problems
) -> None:
    seen: dict[IPv4Address, str] = {}
    for host in hosts.values():
        if host.address in seen:
            p.add(_h(host.name), "ansible_host",
                  f"{host.address} is already the address of host '{seen[host.address]}'")
        seen[host.address] = host.name
    for area in areas.values():
        for seg in area.segments:
            for name in seg.hosts:
                member = hosts.get(name)
                if member is None or member.segment != seg.qualified:
                    continue
                address = member.address
                kind = "sub-area" if seg.kind == "sub_area" else "mobile segment"
                if address not in seg.prefix:
                    p.add(_h(name), "ansible_host",
                          f"{address} is outside its {kind} '{seg.qualified}' prefix {seg.prefix}")
                elif address in (seg.prefix.network_address, seg.prefix.broadcast_address):
                    p.add(_h(name), "ansible_host", f"{address} is the network or broadcast address of {seg.prefix}")
                elif address == seg.gateway_address:
                    p.add(_h(name), "ansible_host", f"{address} is the gateway address of '{seg.qualified}'")
    if internet:
        for name in internet.hosts:
            inet_host = hosts.get(name)
            if inet_host and inet_host.address not in internet.prefix:
                p.add(_h(name), "ansible_host", f"{inet_host.address} is outside the internet prefix {internet.prefix}")


def _check_overlaps(
    areas: dict[str, Area], internet: InternetSegment | None, hosts: dict[str, Host], p: _Problems
) -> None:
    nets: list[tuple[str, IPv4Network]] = [(_g(s.group), s.prefix) for a in areas.values() for s in a.segments]
    if internet:
        nets.append((_g("internet"), internet.prefix))
    nets += [(f"{_h(h.name)} uplink", h.uplink.network) for h in hosts.values() if h.uplink]
    for i, (where_a, net_a) in enumerate(nets):
        for where_b, net_b in nets[i + 1:]:
            if net_a.overlaps(net_b):
                p.add(where_b, None, f"prefix {net_b} overlaps {net_a} of {where_a}")


def _check_flows(area: Area, areas: dict[str, Area], hosts: dict[str, Host], p: _Problems) -> None:
    qualified = {s.qualified for a in areas.values() for s in a.segments}
    for flow in area.critical_flows:
        where = f"{_g(area.group)}, critical flow '{flow.name}'"
        for side, endpoints in (("source", flow.sources), ("destination", flow.destinations)):
            for ep in endpoints:
                if flow_endpoint_is_everything(ep):
                    p.add(where, None, f"{side} '{ep}' is the whole address space; name explicit hosts or prefixes")
                elif ep in hosts or ep in qualified or ep in areas:
                    continue
                else:
                    try:
                        IPv4Network(ep, strict=True)
                    except ValueError:
                        p.add(where, None, f"{side} '{ep}' is no known host, area, sub-area or IPv4 prefix")
        for port in flow.ports:
            if not 1 <= port <= 65535:
                p.add(where, None, f"port {port} is not between 1 and 65535")
