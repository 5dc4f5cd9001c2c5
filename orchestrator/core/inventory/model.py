"""The inventory model: areas, segments (sub-areas and mobile segments), hosts, boundaries, critical
flows, approvers and costs (pydantic, frozen), with the pure helpers the rest of irm uses on it.

Pure: no I/O, no ansible imports. ``validate.build_inventory`` builds it from what ansible-core loaded
(``load``).
"""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.core import names
from orchestrator.core.errors import UnknownNameError
from orchestrator.core.safetext import no_control
from orchestrator.core.signoff import check_signoff

HostKind = Literal["soc", "core", "edge", "gateway", "internet", "area", "node", "other"]
LAB_SPACE = IPv4Network("198.18.0.0/15")

# Keys that describe a group itself (templated at group level), then every irm_* key the schema
# knows: a misspelt key is an error, not a silent default.
GROUP_KEYS = frozenset({
    "irm_prefix", "irm_gateway", "irm_gateway_address", "irm_critical_flows", "irm_downtime_cost_per_hour",
    "irm_lab_name", "irm_lab_state_dir", "irm_lab_prefixes", "irm_lab_worm",
    "irm_crisis_cell_size", "irm_crisis_cell_hourly_rate", "irm_remediation_cost_per_host",
    "irm_manual_remediation_cost_per_host", "irm_currency", "irm_approvers", "irm_detection_sources",
    "irm_detection_threshold", "irm_crisis_cell", "irm_crisis_cell_file", "irm_notify", "irm_execution_node",
    "irm_auto_contain",
})
KNOWN_KEYS = GROUP_KEYS | {
    "irm_os", "irm_host_state_dir", "irm_av_log", "irm_uplink", "irm_lab_vulnerable", "irm_lab_services",
    "irm_lab_worm_blocks", "irm_health_checks", "irm_boundary_kind", "irm_ios_interfaces",
    "irm_ios_known_hosts", "irm_node_runner",
}
BoundaryKind = Literal["nftables", "cisco_ios"]
IOS_CONNECTION = "ansible.netcommon.network_cli"
IOS_NETWORK_OS = "cisco.ios.ios"
IOS_INTERFACE = r"^[A-Za-z][A-Za-z-]*[0-9]+(/[0-9]+)*(\.[0-9]+)?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    @model_validator(mode="after")
    def _signoff(self) -> CriticalFlow:
        check_signoff(self.validated_by, self.validated_at)
        return self


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
    execution_node: str | None = None  # a host of group execution_nodes that runs this area's plays
    auto_contain: bool = True  # irm_auto_contain: never (false) keeps the area out of every automatic policy

    @property
    def sub_areas(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "sub_area")

    @property
    def mobile_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "mobile")

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for s in self.segments for h in s.hosts)


class DeviceLogin(_Model):
    """How irm's own SSH client (netmiko) logs in to a network device: the same port, user and key as
    Ansible's connection, and the known_hosts file that holds the device's host key (checked, never
    learned)."""

    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    known_hosts: str = Field(default="~/.ssh/known_hosts", min_length=1)


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
    # A boundary's kind: a Linux host with nftables, or a Cisco IOS router (access lists over network_cli)
    boundary_kind: BoundaryKind = "nftables"
    # IOS: the routed interfaces irm binds its access list on, inbound (every one a packet may enter by)
    ios_interfaces: tuple[Annotated[str, Field(pattern=IOS_INTERFACE)], ...] = ()
    # IOS: how irm's independent read-back (netmiko) logs in
    login: DeviceLogin | None = None
    # an execution node: the SSH options irm's own ssh uses to reach it (ansible_ssh_common_args), and the
    # node's ansible-runner (irm_node_runner; default: the controller's own path, where irm node install
    # puts it)
    ssh_args: tuple[str, ...] = ()
    node_runner: str | None = None
    runs_jobs: bool = False  # in group execution_nodes (kind "node", or an area host that is its area's jump host)


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
    with one play per OS (so no host walks through the other OS's tasks); "all:!all" matches none. An IOS
    boundary is in neither: it runs no Python and is read with netmiko."""
    return {f"{var}_{os_}": ",".join(h for h in hosts if inv.hosts[h].os == os_
                                     and inv.hosts[h].boundary_kind != "cisco_ios") or "all:!all"
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


SourceKind = Literal["lab_av", "suricata", "wazuh", "defender"]


class DetectionSourceSpec(_Model):
    """A detection feed irm reads (``irm_detection_sources``): Suricata EVE JSON, Wazuh ``alerts.json``,
    Microsoft Defender events 1116/1117 exported as JSON, or the lab AV logs (each area host's
    ``irm_av_log``, no path). Filters: ``signature_ids`` and ``max_severity`` (Suricata: 1 is the most
    severe), ``rule_ids`` and ``min_level`` (Wazuh), ``threat_ids`` and ``min_severity`` (Defender's
    severity ids: 1 low, 2 moderate, 4 high, 5 severe)."""

    kind: SourceKind
    path: str | None = Field(default=None, min_length=1)
    signature_ids: tuple[int, ...] = ()
    max_severity: int = Field(default=3, ge=1, le=255)
    rule_ids: tuple[str, ...] = ()
    min_level: int = Field(default=10, ge=0, le=16)
    threat_ids: tuple[int, ...] = ()
    min_severity: int = Field(default=1, ge=0, le=5)
    # irm prepare: the source must have written a record (any event: Suricata's stats, a heartbeat) within
    # this many seconds, or it counts as dead; None: no such check (a source that only writes detections)
    max_silence: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _path_fits_kind(self) -> DetectionSourceSpec:
        if self.kind == "lab_av" and self.path is not None:
            raise ValueError("a lab_av source has no path: it reads each area host's irm_av_log")
        if self.kind != "lab_av" and self.path is None:
            raise ValueError(f"a {self.kind} source needs a path")
        return self

    @property
    def label(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


class DetectionThreshold(_Model):
    """When a sub-area counts as infected for ``irm identify``: this many detections within this many
    seconds (one detection is enough by default: a worm is not a false positive to wait out)."""

    detections: int = Field(default=1, ge=1, le=100000)
    within: float = Field(default=3600.0, gt=0, le=30 * 86400)


CELL_ROLES = ("crisis_lead", "ciso", "external_cert")  # the crisis cell's own roles (IRM #1, preparation)
AREA_ROLES = ("business_owner", "it_contact")  # for each area


class Contact(_Model):
    """Someone the crisis cell calls: a role, a name, at least one way to reach them, and when the entry
    was last checked (``reviewed_at``): a number that changed since is how a crisis loses an hour."""

    role: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ().-]{3,40}$")
    reviewed_at: date

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if self.email is None and self.phone is None:
            raise ValueError(f"{self.role} {self.name}: give an email or a phone")
        return self


class CrisisCell(_Model):
    """The crisis-cell directory (``irm_crisis_cell``, or the file ``irm_crisis_cell_file`` names)."""

    max_age_days: int = Field(default=90, ge=1, le=3650)
    contacts: tuple[Contact, ...] = ()
    areas: dict[str, tuple[Contact, ...]] = Field(default_factory=dict)


class SmtpSettings(_Model):
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=120)


class WebhookSettings(_Model):
    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(default=10.0, gt=0, le=120)


class NotifySettings(_Model):
    """How irm tells the crisis cell (``irm_notify``): email to every directory entry with an address, and
    optionally a webhook (a chat room, a ticketing system) that receives the same message as JSON."""

    smtp: SmtpSettings | None = None
    webhook: WebhookSettings | None = None


class Inventory(_Model):
    source: str
    costs: CostSettings = CostSettings()
    approvers: tuple[Approver, ...] = ()
    detection_sources: tuple[DetectionSourceSpec, ...] = ()
    detection_threshold: DetectionThreshold = DetectionThreshold()
    crisis_cell: CrisisCell | None = None
    crisis_cell_file: str | None = None  # read when used (preparation.crisis_cell.load)
    notify: NotifySettings = NotifySettings()
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
    def execution_nodes(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.runs_jobs]

    def node_of(self, area: str) -> Host | None:
        """The execution node that runs this area's plays, if it has one."""
        name = self.area(area).execution_node
        return self.hosts[name] if name else None

    def from_soc(self) -> Inventory:
        """This inventory with every area run from the SOC (no execution node): for when a node is down
        and the SOC has a route to the area."""
        return self.model_copy(update={"areas": {n: a.model_copy(update={"execution_node": None})
                                                 for n, a in self.areas.items()}})

    def manager_of(self, host: Host) -> Host | None:
        """Where management connections to ``host`` come from: its area's execution node (which runs the
        plays on it), or None for the SOC. A node is itself managed from the SOC, and boundaries are too
        (their change must be proven from the SOC, through the node for the hosts behind it)."""
        if host.kind != "area" or host.area is None:
            return None
        node = self.node_of(host.area)
        return node if node is not None and node.name != host.name else None

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


def core_side(uplink: IPv4Interface) -> IPv4Address:
    """The core's address on a link: the first usable address of the link's prefix."""
    return next(uplink.network.hosts(), uplink.network.network_address)


def flow_endpoint_is_everything(endpoint: str) -> bool:
    try:
        return ipaddress.ip_network(endpoint, strict=False).prefixlen == 0
    except ValueError:
        return endpoint.strip().lower() in ("any", "all", "*")
