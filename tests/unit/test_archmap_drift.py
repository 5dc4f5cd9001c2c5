"""The architecture map escapes every inventory name where it lands, and drift compares what a gateway
resolved with the inventory: unknown addresses in the area's segments, hosts never seen."""

from __future__ import annotations

import xml.dom.minidom

from orchestrator.core.inventory.load import load_inventory
from orchestrator.preparation import archmap
from orchestrator.preparation.drift import compare, parse_ip_neigh
from tests.conftest import LAB_INVENTORY


def test_the_map_shows_every_segment_and_flow_and_escapes_names() -> None:
    inv = load_inventory(LAB_INVENTORY)
    area = inv.areas["subsidiary-x"]
    flow = area.critical_flows[0].model_copy(update={"owner": "<script>|Finance</script>"})
    inv = inv.model_copy(update={"areas": {**inv.areas, "subsidiary-x": area.model_copy(
        update={"critical_flows": (flow,)})}})
    text = archmap.markdown(inv)
    for seg in inv.segments:
        assert f"| {seg.name} |" in text and str(seg.prefix) in text
    assert "| subsidiary-x/vpn" not in text and "mobile (laptops, VPN)" in text
    assert "<script>" not in text and r"\|Finance" in text  # a table cell cannot be broken out of
    drawing = archmap.svg(inv)
    xml.dom.minidom.parseString(drawing)  # well-formed: the owner's markup stayed text
    assert "&lt;script&gt;|Finance&lt;/script&gt;" in drawing and "gw-y (IOS)" in drawing


def test_drift_names_unknown_addresses_and_hosts_never_seen() -> None:
    inv = load_inventory(LAB_INVENTORY)
    rows = [{"dst": "198.18.32.11", "dev": "br0", "lladdr": "aa:bb:cc:dd:ee:01", "state": ["REACHABLE"]},
            {"dst": "198.18.32.99", "dev": "br0", "lladdr": "aa:bb:cc:dd:ee:02", "state": ["STALE"]},
            {"dst": "198.18.33.50", "dev": "br1", "state": ["FAILED"]},  # never answered: not there
            {"dst": "198.18.0.13", "dev": "up0", "lladdr": "aa:bb:cc:dd:ee:03", "state": ["REACHABLE"]},
            {"dst": "198.18.32.1", "dev": "br0", "lladdr": "aa:bb:cc:dd:ee:04", "state": ["REACHABLE"]}]
    seen = parse_ip_neigh(rows)
    assert seen == ["198.18.32.11", "198.18.32.99", "198.18.0.13", "198.18.32.1"]
    d = compare(inv, "subsidiary-x", seen)
    # the core link is not the area's; the gateway's own address is known
    assert d.unknown == ["198.18.32.99"]
    assert d.never_seen == ["x-ws12", "x-ws13", "x-ws21", "x-ws22", "x-lt1", "x-lt2"]
