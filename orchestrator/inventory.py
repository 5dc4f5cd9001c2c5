"""The inventory model: areas, segments (sub-areas and mobile segments), hosts, boundaries and critical
flows, validated from what ansible-core loaded (see ``inventory_loader``).

Pure: no I/O, no ansible imports. ``build_inventory`` collects every problem it finds, one line each,
naming the group or host and the key at fault, and raises them together as an ``InventoryError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator import names
from orchestrator.errors import InventoryError, UnknownNameError
from orchestrator.safetext import no_control

HostKind = Literal["soc", "core", "edge", "gateway", "internet", "area", "other"]
LAB_SPACE = IPv4Network("198.18.0.0/15")

# Keys that describe a group itself (templated at group level), then every irm_* key the schema
# knows: a misspelt key is an error, not a silent default.
GROUP_KEYS = frozenset({
    "irm_prefix", "irm_gateway", "irm_gateway_address", "irm_critical_flows", "irm_downtime_cost_per_hour",
    "irm_lab_name", "irm_lab_state_dir", "irm_lab_prefixes", "irm_lab_worm",
    "irm_crisis_cell_size", "irm_crisis_cell_hourly_rate", "irm_remediation_cost_per_host",
    "irm_manual_remediation_cost_per_host", "irm_currency", "irm_approvers",
})
KNOWN_KEYS = GROUP_KEYS | {
    "irm_os", "irm_host_state_dir", "irm_av_log", "irm_uplink", "irm_lab_vulnerable", "irm_lab_services",
    "irm_lab_worm_blocks", "irm_health_checks",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        return no_control(value)


class LabService(_Model):
    """A plain TCP service the lab runs on a host (the ERP, a web site): something to probe."""

    name: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class LabPackage(_Model):
    """The package that ships the lab's vulnerable service: the fix is its fixed version."""

    name: str = Field(default="irm-lab-svc", pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$")
    installed_version: str = Field(default="1.0", pattern=r"^[0-9][0-9.]{0,31}$")
    fixed_version: str = Field(default="1.1", pattern=r"^[0-9][0-9.]{0,31}$")


class HealthCheck(_Model):
    """A service that must still answer, from the host, after remediation (IRM #1: without damaging any
    service). ``host`` is an inventory host (default: the host itself)."""

    name: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    host: str | None = None


class WormSettings(_Model):
    signature: str = Field(min_length=1)
    package: LabPackage = LabPackage()
    signatures_version: str = Field(default="2026.11.1", pattern=r"^[0-9][0-9.]{0,31}$",
                                    description="the first lab AV signature version that detects the worm")
    ports: list[int] = Field(min_length=1)
    rate: float = Field(gt=0, le=100, description="connection attempts per second per infected host")
    lifetime: float = Field(gt=0, le=3600, description="seconds before a worm process stops by itself")
    detection_delay: float = Field(default=1.0, ge=0, le=600)
    miss_rate: float = Field(default=0.0, ge=0, le=1)

    @field_validator("ports")
    @classmethod
    def _ports_in_range(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not between 1 and 65535")
        return ports


class LabSettings(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,10}$")
    state_dir: str = Field(min_length=2)
    prefixes: list[IPv4Network] = Field(min_length=1)
    worm: WormSettings


class CriticalFlow(_Model):
    """A business flow that stays open while its area is isolated, once validated (IRM #1, 3.3)."""

    name: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    destinations: list[str] = Field(min_length=1)
    protocol: Literal["tcp", "udp"]
    ports: list[int] = Field(min_length=1)
    owner: str = Field(min_length=1)
    validated_by: str | None = None
    validated_at: datetime | None = None


class Segment(_Model):
    """A sub-area (workstations, servers) or a mobile/VPN segment (laptops) of an area."""

    name: str
    area: str
    kind: names.SegmentKind
    group: str
    prefix: IPv4Network
    gateway_address: IPv4Address
    hosts: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return names.qualified_segment(self.area, self.name)


class Area(_Model):
    name: str
    group: str
    gateway: str
    segments: tuple[Segment, ...]
    critical_flows: tuple[CriticalFlow, ...] = ()
    downtime_cost_per_hour: float | None = None

    @property
    def sub_areas(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "sub_area")

    @property
    def mobile_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "mobile")

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for s in self.segments for h in s.hosts)


class Host(_Model):
    name: str
    kind: HostKind
    address: IPv4Address
    os: Literal["linux", "windows"] = "linux"
    area: str | None = None
    segment: str | None = None
    uplink: IPv4Interface | None = None
    state_dir: str = "/var/lib/irm"
    av_log: str | None = None
    vulnerable: bool = False
    services: tuple[LabService, ...] = ()
    worm_blocks: tuple[Literal["package", "antivirus", "disinfect"], ...] = ()
    health_checks: tuple[HealthCheck, ...] = ()


class InternetSegment(_Model):
    prefix: IPv4Network
    gateway_address: IPv4Address
    hosts: tuple[str, ...]


class CostSettings(_Model):
    """What the crisis report's cost uses besides each area's downtime cost (group 'all'); nothing is
    invented: an input not declared is shown as such and left out of the total."""

    crisis_cell_size: int | None = Field(default=None, ge=1, le=1000)
    crisis_cell_hourly_rate: float | None = Field(default=None, ge=0)
    remediation_cost_per_host: float | None = Field(default=None, ge=0)
    manual_remediation_cost_per_host: float | None = Field(default=None, ge=0)
    currency: str = Field(default="EUR", min_length=1, max_length=8)


def hosts_by_os(inv: Inventory, hosts: list[str], var: str = "irm_targets") -> dict[str, str]:
    """Extra vars ``<var>_linux`` and ``<var>_windows``: the hosts as a pattern per OS, for playbooks
    with one play per OS (so no host walks through the other OS's tasks); "all:!all" matches none."""
    return {f"{var}_{os_}": ",".join(h for h in hosts if inv.hosts[h].os == os_) or "all:!all"
            for os_ in ("linux", "windows")}


class Approver(_Model):
    """A manager whose signed approval lets recovery start (``irm approve --key``): their SSH public key
    inline (``key``) or in a file (``key_file``, relative to the inventory's directory)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9._-]{0,63}$")
    role: str = Field(min_length=1, max_length=100)
    key: str | None = Field(default=None, pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+( .*)?$")
    key_file: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Approver:
        if (self.key is None) == (self.key_file is None):
            raise ValueError("give exactly one of key (the public key) or key_file (its file)")
        return self


class Inventory(_Model):
    source: str
    costs: CostSettings = CostSettings()
    approvers: tuple[Approver, ...] = ()
    lab: LabSettings | None
    hosts: dict[str, Host]
    areas: dict[str, Area]
    internet: InternetSegment | None = None

    def _one(self, kind: HostKind) -> Host | None:
        found = [h for h in self.hosts.values() if h.kind == kind]
        return found[0] if found else None

    @property
    def soc(self) -> Host | None:
        return self._one("soc")

    @property
    def core(self) -> Host | None:
        return self._one("core")

    @property
    def edge(self) -> Host | None:
        return self._one("edge")

    @property
    def gateways(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.kind == "gateway"]

    @property
    def managed_hosts(self) -> list[Host]:
        """Every host irm reaches over SSH/WinRM from the SOC."""
        return [h for h in self.hosts.values() if h.kind not in ("soc", "other")]

    @property
    def segments(self) -> list[Segment]:
        return [s for a in self.areas.values() for s in a.segments]

    def area(self, name: str) -> Area:
        if name in self.areas:
            return self.areas[name]
        known = ", ".join(sorted(self.areas)) or "none"
        hint = ""
        if names.parse_area_group(name):
            hint = f" (that is a group name; the area is '{names.parse_area_group(name)}')"
        raise UnknownNameError(f"unknown area '{name}'{hint}; areas in {self.source}: {known}")

    def segment(self, qualified: str) -> Segment:
        for seg in self.segments:
            if seg.qualified == qualified:
                return seg
        known = ", ".join(s.qualified for s in self.segments) or "none"
        raise UnknownNameError(f"unknown sub-area '{qualified}'; sub-areas in {self.source}: {known}")

    def host(self, name: str) -> Host:
        if name in self.hosts:
            return self.hosts[name]
        raise UnknownNameError(f"unknown host '{name}' in {self.source}")

    def host_by_address(self, address: IPv4Address | str) -> Host | None:
        addr = IPv4Address(str(address))
        for host in self.hosts.values():
            if host.address == addr:
                return host
        return None


# --------------------------------------------------------------------------------------------------
# Building the model from what ansible-core loaded


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
    if p.lines:
        raise InventoryError(*(f"{raw.source}: {line}" for line in p.lines))
    return Inventory(source=raw.source, costs=costs or CostSettings(), lab=lab, hosts=hosts, areas=areas,
                     internet=internet, approvers=approvers)


_HOST_KEYS = {"os": "irm_os", "address": "ansible_host", "uplink": "irm_uplink", "state_dir": "irm_host_state_dir",
              "av_log": "irm_av_log", "vulnerable": "irm_lab_vulnerable", "services": "irm_lab_services",
              "worm_blocks": "irm_lab_worm_blocks", "health_checks": "irm_health_checks"}


def _approvers(value: Any, p: _Problems) -> tuple[Approver, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(_g("all"), "irm_approvers", "must be a list of {name, role, key or key_file}")
        return ()
    out: list[Approver] = []
    for i, item in enumerate(value):
        approver = p.validate(Approver, item, _g("all"), f"irm_approvers.{i}")
        if approver is not None:
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
        if cost is not None and (not isinstance(cost, int | float) or cost < 0):
            p.add(where, "irm_downtime_cost_per_hour", f"{cost!r} is not a non-negative number")
            cost = None
        areas[area] = Area(
            name=area, group=group.name, gateway=str(group.vars.get("irm_gateway", "")),
            segments=tuple(segments[area]), critical_flows=tuple(flows),
            downtime_cost_per_hour=cost,
        )
    return areas, segment_of


def _host_kind(groups: Iterable[str]) -> HostKind:
    gs = set(groups)
    for group, kind in (("soc", "soc"), ("core", "core"), ("edge", "edge"), ("gateways", "gateway"),
                        ("internet", "internet")):
        if group in gs:
            return kind  # type: ignore[return-value]
    if any(names.parse_area_group(g) for g in gs):
        return "area"
    return "other"


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
        }
        host = p.validate(Host, data, where, "irm", keys=_HOST_KEYS)
        if host is not None:
            hosts[rh.name] = host
    return hosts


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


def core_side(uplink: IPv4Interface) -> IPv4Address:
    """The core's address on a link: the first usable address of the link's prefix."""
    return next(uplink.network.hosts(), uplink.network.network_address)


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


def flow_endpoint_is_everything(endpoint: str) -> bool:
    try:
        return ipaddress.ip_network(endpoint, strict=False).prefixlen == 0
    except ValueError:
        return endpoint.strip().lower() in ("any", "all", "*")


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
