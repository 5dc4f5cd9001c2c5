"""The wiring plan derived from an inventory: pure, checked without building anything."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.errors import LabError
from orchestrator.core.inventory.load import load_inventory
from orchestrator.lab.topology import plan_lab
from tests.conftest import LAB_INVENTORY, MINI_INVENTORY


def test_shipped_lab_plan() -> None:
    plan = plan_lab(load_inventory(LAB_INVENTORY))
    assert len(plan.namespaces) == 23
    assert plan.root_ifaces == ["irmlab-soc"]
    routers = {n.host for n in plan.namespaces if n.router}
    assert routers == {"core-rtr", "edge-fw", "gw-hq", "gw-x", "gw-y", "gw-z"}
    # one bridge per segment behind each gateway, one for the internet segment behind the edge
    assert sorted((b.ns, str(b.address)) for b in plan.bridges) == sorted([
        ("irmlab-edge-fw", "198.19.0.1/24"),
        ("irmlab-gw-hq", "198.18.16.1/24"), ("irmlab-gw-hq", "198.18.17.1/24"),
        ("irmlab-gw-x", "198.18.32.1/24"), ("irmlab-gw-x", "198.18.33.1/24"), ("irmlab-gw-x", "198.18.40.1/24"),
        ("irmlab-gw-y", "198.18.48.1/24"), ("irmlab-gw-y", "198.18.49.1/24"),
        ("irmlab-gw-z", "198.18.56.1/24"), ("irmlab-gw-z", "198.18.57.1/24"),
    ])
    # management travels in-band: the SOC routes the lab through the core, hosts through their gateway
    # except subsidiary-z, reached through its execution node z-node only: no route to its segments
    soc_routes = [(str(r.prefix), str(r.via)) for r in plan.routes if r.ns is None]
    assert soc_routes == [("198.18.0.0/16", "198.18.0.1"), ("198.19.0.0/24", "198.18.0.1"),
                          ("198.18.56.0/24", "None"), ("198.18.57.0/24", "None"), ("198.18.56.5/32", "198.18.0.1")]
    ws = [(str(r.prefix), str(r.via)) for r in plan.routes if r.ns == "irmlab-x-ws21"]
    assert ws == [("198.18.0.0/16", "198.18.33.1"), ("198.19.0.0/24", "198.18.33.1")]
    # no route anywhere leaves the lab's prefixes (no default route)
    assert all(any(r.prefix.subnet_of(p) for p in plan.prefixes) for r in plan.routes)
    # interface names fit the kernel's 15 characters
    assert all(len(n) <= 15 for lk in plan.links for n in (lk.a_if, lk.b_if))


def test_mini_lab_plan_follows_its_own_inventory() -> None:
    plan = plan_lab(load_inventory(MINI_INVENTORY))
    assert {n.host for n in plan.namespaces} == {"spine", "border", "plant-gw", "cloud", "hmi-1", "hmi-2"}
    assert ("irmmini-plant-gw", "198.19.66.62/26") in [(b.ns, str(b.address)) for b in plan.bridges]
    assert plan.prefixes == [IPv4Network("198.19.64.0/20")]


def test_lab_refuses_addresses_outside_the_lab_space(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    inv.mkdir()
    data = yaml.safe_load((MINI_INVENTORY / "hosts.yml").read_text())
    data["all"]["vars"]["irm_lab_prefixes"] = ["10.0.0.0/8", "198.19.64.0/20"]
    (inv / "hosts.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(LabError) as exc:
        plan_lab(load_inventory(inv))
    assert exc.value.problems == (
        f"{inv}: group 'all', key 'irm_lab_prefixes': 10.0.0.0/8 is outside 198.18.0.0/15, the only space the "
        "lab may use",
    )


def test_lab_refuses_shared_state_directories(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    inv.mkdir()
    data = yaml.safe_load((MINI_INVENTORY / "hosts.yml").read_text())
    data["all"]["vars"]["irm_host_state_dir"] = "/tmp/irm-shared"
    (inv / "hosts.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(LabError, match="is also the state directory of"):
        plan_lab(load_inventory(inv))


def test_an_emulated_ios_gateway_is_wired_uplink_first_then_one_interface_per_segment(tmp_path: Path) -> None:
    from orchestrator.lab.builder import ios_interfaces

    inv = load_inventory(LAB_INVENTORY)
    plan = plan_lab(inv)
    assert ios_interfaces(plan, inv.hosts["gw-y"]) == {"GigabitEthernet0/0": "up0", "GigabitEthernet0/1": "br0",
                                                     "GigabitEthernet0/2": "br1"}
    # one interface too few for the lab's links: named, nothing built
    from tests.unit.test_inventory_validation import _children, make_inventory

    def mutate(d: dict[str, Any]) -> None:
        _children(d)["boundaries"]["children"]["gateways"]["hosts"]["gw-y"]["irm_ios_interfaces"] = ["Gi0/0"]

    with pytest.raises(LabError, match=r"host 'gw-y', key 'irm_ios_interfaces': the lab wires 3 interface\(s\)"):
        plan_lab(load_inventory(make_inventory(tmp_path, mutate)))
