"""The inventory: ``model`` (what irm knows of the network), ``validate`` (the schema applied to what
ansible-core loaded) and ``load`` (loading through ansible-core, imported on demand: it imports ansible).
The public names of the model and of validation are re-exported here."""

from __future__ import annotations

from orchestrator.core.inventory.model import (
    GROUP_KEYS,
    KNOWN_KEYS,
    LAB_SPACE,
    Approver,
    Area,
    CostSettings,
    CriticalFlow,
    HealthCheck,
    Host,
    HostKind,
    InternetSegment,
    Inventory,
    LabSettings,
    Segment,
    core_side,
    flow_endpoint_is_everything,
    hosts_by_os,
)
from orchestrator.core.inventory.validate import RawGroup, RawHost, RawInventory, build_inventory

__all__ = [
    "GROUP_KEYS", "KNOWN_KEYS", "LAB_SPACE", "Approver", "Area", "CostSettings", "CriticalFlow", "HealthCheck",
    "Host", "HostKind", "InternetSegment", "Inventory", "LabSettings", "RawGroup", "RawHost", "RawInventory",
    "Segment", "build_inventory", "core_side", "flow_endpoint_is_everything", "hosts_by_os",
]
