"""Postures, policies and the pre-apply checks (pure: no lab)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from orchestrator.core import checks, posture
from orchestrator.core.incident import IncidentSpec, Vector
from orchestrator.core.inventory import CriticalFlow, Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.posture import AreaState, Packet, Rule, policies
from tests.conftest import LAB_INVENTORY

SMB = [Vector(protocol="tcp", port=4445)]


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(LAB_INVENTORY)


def full(inv: Inventory) -> AreaState:
    return AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                     quarantined={s.qualified for s in inv.area("subsidiary-x").sub_areas})


def verdict(inv: Inventory, states: dict[str, AreaState], host: str, chain: str, pkt: Packet) -> str:
    return policies(inv, SMB, states)[host].chain(chain).verdict(pkt)[0]  # type: ignore[arg-type]


def ip(inv: Inventory, host: str) -> IPv4Address:
    return inv.hosts[host].address


def test_connected_policies_accept_everything(inv: Inventory) -> None:
    planned = policies(inv, SMB, {})
    assert all(not p.forward.rules and not p.input.rules for p in planned.values())


def test_isolation_semantics(inv: Inventory) -> None:
    st = {"subsidiary-x": AreaState(posture="isolated")}
    x11, ws1, erp = ip(inv, "x-ws11"), ip(inv, "hq-ws1"), ip(inv, "hq-erp")
    assert verdict(inv, st, "gw-x", "forward", Packet(ws1, x11, "tcp", 22)) == "drop"      # LAN -> area
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, ws1, "tcp", 4445)) == "drop"    # area -> LAN
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, erp, "tcp", 8069)) == "accept"  # critical flow
    assert verdict(inv, st, "gw-x", "forward", Packet(erp, x11, "tcp", 40000, 8069, True)) == "accept"
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, erp, "tcp", 22)) == "drop"      # only the flow's port
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, ip(inv, "x-ws21"), "tcp", 22)) == "accept"  # inside
    assert verdict(inv, st, "edge-fw", "forward", Packet(x11, ip(inv, "inet-web"), "tcp", 80)) == "drop"
    assert verdict(inv, st, "edge-fw", "forward", Packet(ws1, ip(inv, "inet-web"), "tcp", 80)) == "accept"


def test_quarantine_and_mobile_block(inv: Inventory) -> None:
    st = {"subsidiary-x": full(inv)}
    x11, x21, lt1 = ip(inv, "x-ws11"), ip(inv, "x-ws21"), ip(inv, "x-lt1")
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, x21, "tcp", 22)) == "drop"
    assert verdict(inv, st, "gw-x", "forward", Packet(lt1, x11, "tcp", 22)) == "drop"
    assert verdict(inv, st, "gw-x", "forward", Packet(x11, ip(inv, "hq-erp"), "tcp", 8069)) == "accept"
    soc = ip(inv, "soc-console")
    for host in ("x-lt1", "x-ws21"):
        assert verdict(inv, st, "gw-x", "forward", Packet(soc, ip(inv, host), "tcp", 22)) == "accept"
    assert verdict(inv, st, "x-ws12", "input", Packet(x11, ip(inv, "x-ws12"), "tcp", 4445)) == "drop"
    assert verdict(inv, st, "x-ws12", "output", Packet(ip(inv, "x-ws12"), x11, "tcp", 4445)) == "drop"
    assert verdict(inv, st, "hq-ws1", "input", Packet(x11, ip(inv, "hq-ws1"), "tcp", 4445)) == "accept"


def test_full_containment_keeps_management_open(inv: Inventory) -> None:
    assert checks.check_management(inv, policies(inv, SMB, {"subsidiary-x": full(inv), "hq": AreaState(
        posture="isolated", vectors_blocked=True, mobile_blocked=True)})) == []


def test_an_ssh_worm_is_blocked_without_locking_out_the_soc(inv: Inventory) -> None:
    ssh_worm = [Vector(protocol="tcp", port=22)]
    planned = policies(inv, ssh_worm, {"subsidiary-x": full(inv)})
    assert checks.check_management(inv, planned) == []
    x12 = inv.hosts["x-ws12"].address
    assert planned["x-ws12"].input.verdict(Packet(ip(inv, "x-ws11"), x12, "tcp", 22))[0] == "drop"


def test_lockout_check_names_host_hop_and_rule(inv: Inventory) -> None:
    planned = policies(inv, SMB, {"subsidiary-x": full(inv)})
    gw = planned["gw-x"]
    cut = Rule(action="drop", src=[IPv4Network("198.18.0.2/32")], comment="careless rule")
    forward = gw.forward.model_copy(update={"rules": [cut, *gw.forward.rules]})
    planned["gw-x"] = gw.model_copy(update={"forward": forward})
    problems = checks.check_management(inv, planned)
    expected = "would lock the operator out: management to x-ws11 (tcp/22) dropped at gw-x (forward: careless rule)"
    assert expected in problems
    assert len(problems) == 7  # every area host behind gw-x, and nobody else


def _flow(**changes: object) -> CriticalFlow:
    base = dict(name="f", sources=["x-ws11"], destinations=["hq-erp"], protocol="tcp", ports=[8069],
                owner="Finance", validated_by="CISO", validated_at="2026-11-01T00:00:00Z")
    return CriticalFlow.model_validate({**base, **changes})


@pytest.mark.parametrize(("changes", "expected"), [
    ({"ports": [4445]}, "critical flow 'f' of area 'subsidiary-x': uses tcp/4445, a propagation vector of the "
                        "incident: refused"),
    ({"validated_by": None}, "critical flow 'f' of area 'subsidiary-x': not validated (validated_by and "
                             "validated_at are required)"),
    ({"sources": ["subsidiary-x"]}, "critical flow 'f' of area 'subsidiary-x': source 'subsidiary-x' is a whole "
                                    "area; name hosts or sub-areas"),
    ({"destinations": ["198.18.0.0/16"]}, "critical flow 'f' of area 'subsidiary-x': destination '198.18.0.0/16' "
                                          "covers the whole area 'hq'"),
    ({"sources": ["0.0.0.0/0"]}, "critical flow 'f' of area 'subsidiary-x': source '0.0.0.0/0' is the whole "
                                 "address space"),
])
def test_critical_flow_refusals(inv: Inventory, changes: dict[str, object], expected: str) -> None:
    area = inv.area("subsidiary-x").model_copy(update={"critical_flows": (_flow(**changes),)})
    assert expected in checks.check_critical_flows(inv, area, SMB)


def test_the_shipped_flow_is_acceptable(inv: Inventory) -> None:
    assert checks.check_critical_flows(inv, inv.area("subsidiary-x"), SMB) == []


def test_incident_spec_parsing() -> None:
    spec = IncidentSpec.model_validate(
        {"worm": "W", "vectors": ["tcp/445", "udp/137"], "references": ["CVE-2017-0144"]})
    assert [str(v) for v in spec.vectors] == ["tcp/445", "udp/137"]
    with pytest.raises(ValueError, match="is not a vector"):
        IncidentSpec.model_validate({"worm": "W", "vectors": ["445"]})


def test_windows_block_rules_win_so_a_winrm_vector_is_refused(tmp_path: Path) -> None:
    import shutil

    import yaml

    inv_dir = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv_dir)
    data = yaml.safe_load((inv_dir / "hosts.yml").read_text())
    office = data["all"]["children"]["area_subsidiary_x"]["children"]["subarea_subsidiary_x__office_2"]
    office["hosts"]["x-ws22"]["irm_os"] = "windows"
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    winv = load_inventory(inv_dir)
    st = {"subsidiary-x": AreaState(posture="isolated", vectors_blocked=True)}
    assert checks.check_management(winv, policies(winv, SMB, st)) == []
    winrm_worm = [Vector(protocol="tcp", port=5985)]
    problems = checks.check_management(winv, policies(winv, winrm_worm, st))
    assert problems == ["would lock the operator out: management to x-ws22 (tcp/5985) dropped at x-ws22 (input: "
                        "vector tcp/5985 inbound (Windows Firewall: block rules win))"]


def test_an_isolated_area_keeps_open_the_validated_flows_other_areas_declare_into_it(inv: Inventory) -> None:
    hq_isolated = {"hq": AreaState(posture="isolated")}
    rules = policies(inv, SMB, hq_isolated)["gw-hq"].forward.rules
    assert any(r.comment.startswith("critical flow erp-orders") for r in rules)
    assert [a.name for a, _ in posture.flows_through(inv, inv.area("hq"))] == ["subsidiary-x"]
    # the same flow on a vector of the incident is not kept open, and the check names it
    vector = [Vector(protocol="tcp", port=8069)]
    rules = policies(inv, vector, hq_isolated)["gw-hq"].forward.rules
    assert not any(r.comment.startswith("critical flow erp-orders") for r in rules)
    assert ("critical flow 'erp-orders' of area 'subsidiary-x': uses tcp/8069, a propagation vector of the "
            "incident: refused") in checks.check_critical_flows(inv, inv.area("hq"), vector)


def test_fingerprints_name_exactly_one_policy(inv: Inventory) -> None:
    connected = policies(inv, SMB, {})
    assert {p.fingerprint for p in connected.values()} == {"absent"}  # no irm table at all
    contained = policies(inv, SMB, {"subsidiary-x": full(inv)})
    again = policies(inv, SMB, {"subsidiary-x": full(inv)})
    prints = {h: p.fingerprint for h, p in contained.items()}
    assert prints == {h: p.fingerprint for h, p in again.items()}  # deterministic
    assert prints["gw-x"].startswith("irm-nft-") and len(prints["gw-x"]) == len("irm-nft-") + 32
    # a digest of what is enforced (two hosts with the same rules share one); one more quarantined
    # sub-area changes the gateway's only
    changed = policies(inv, SMB, {"subsidiary-x": AreaState(posture="isolated", vectors_blocked=True,
                                                             mobile_blocked=True)})
    assert {h for h in prints if changed[h].fingerprint != prints[h]} == {"gw-x"}


def test_an_ios_boundarys_own_management_crosses_its_access_list(tmp_path: Path, inv: Inventory) -> None:
    """On IOS the list bound in filters what reaches the router itself: a forward rule that drops SSH to
    the device's own address locks the operator out of it, and the check says so; its reach list holds
    the device once, then every host managed through it."""
    from tests.unit.test_inventory_validation import IOS, _children, make_inventory

    path = make_inventory(tmp_path, lambda d: _children(d)["boundaries"]["children"]["gateways"]["hosts"]["gw-x"]
                          .update(IOS))
    iinv = load_inventory(path)
    planned = policies(iinv, SMB, {"subsidiary-x": AreaState(posture="isolated")})
    assert checks.check_management(iinv, planned) == []
    gw = iinv.hosts["gw-x"]
    planned["gw-x"].forward.rules.insert(0, Rule(action="drop", dst=[IPv4Network(f"{gw.address}/32")],
                                                 comment="someone's rule"))
    assert checks.check_management(iinv, planned) == [
        "would lock the operator out: management to gw-x (tcp/22) dropped at gw-x (forward: someone's rule)"]
    reach = checks.reach_targets(iinv, ["gw-x"])
    assert [r["host"] for r in reach].count("gw-x") == 1 and {"x-ws11", "x-lt1"} <= {r["host"] for r in reach}
    # an nftables gateway's own input chain is what guards its SSH: the same forward rule does not
    nplanned = policies(inv, SMB, {"subsidiary-x": AreaState(posture="isolated")})
    nplanned["gw-x"].forward.rules.insert(0, Rule(action="drop", dst=[IPv4Network(f"{gw.address}/32")],
                                                  comment="someone's rule"))
    assert checks.check_management(inv, nplanned) == []


def _z_full(inv: Inventory) -> AreaState:
    return AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                     quarantined={s.qualified for s in inv.area("subsidiary-z").sub_areas})


def test_hosts_behind_an_execution_node_are_managed_from_it(inv: Inventory) -> None:
    """subsidiary-z's hosts are managed from z-node, z-node from the SOC: an SSH worm (tcp/22) contained
    there keeps SOC -> node -> host open, and nothing else from the SOC into the area."""
    ssh_worm = [Vector(protocol="tcp", port=22)]
    planned = policies(inv, ssh_worm, {"subsidiary-z": _z_full(inv)})
    assert checks.check_management(inv, planned) == []
    node, ws21, ws11 = ip(inv, "z-node"), ip(inv, "z-ws21"), ip(inv, "z-ws11")
    soc = ip(inv, "soc-console")
    gw = planned["gw-z"].forward
    assert gw.verdict(Packet(node, ws21, "tcp", 22))[0] == "accept"  # across the quarantine
    assert gw.verdict(Packet(soc, node, "tcp", 22))[0] == "accept"
    assert gw.verdict(Packet(soc, ws21, "tcp", 22))[0] == "drop"  # the SOC manages no host behind the node
    assert planned["z-node"].output.verdict(Packet(node, ws11, "tcp", 22))[0] == "accept"  # despite the worm
    assert planned["z-ws11"].input.verdict(Packet(node, ws11, "tcp", 22))[0] == "accept"
    assert planned["z-ws11"].input.verdict(Packet(ip(inv, "z-ws21"), ws11, "tcp", 22))[0] == "drop"
    # the endpoints a change of gw-z must reach again: the node from the SOC, z-ws21 through the node
    endpoints = {str(e["host"]): e for e in checks.reach_targets(inv, ["gw-z"])}
    assert sorted(endpoints) == ["gw-z", "z-node", "z-ws21"]
    assert "through" not in endpoints["z-node"]
    assert endpoints["z-ws21"]["through"]["name"] == "z-node"  # type: ignore[index]


def test_the_lockout_check_names_the_nodes_leg(inv: Inventory) -> None:
    planned = policies(inv, SMB, {"subsidiary-z": _z_full(inv)})
    gw = planned["gw-z"]
    cut = Rule(action="drop", src=[IPv4Network("198.18.56.5/32")], comment="careless rule")
    planned["gw-z"] = gw.model_copy(update={"forward": gw.forward.model_copy(
        update={"rules": [cut, *gw.forward.rules]})})
    problems = checks.check_management(inv, planned)
    # the node's replies to the SOC, and the node's own sessions to the host behind gw-z
    assert problems == ["would lock the operator out: management from z-node (tcp/22) dropped at gw-z "
                        "(forward: careless rule)",
                        "would lock the operator out: management to z-ws21 from z-node (tcp/22) dropped at gw-z "
                        "(forward: careless rule)"]


def test_from_soc_plans_and_proves_management_from_the_soc(inv: Inventory) -> None:
    """--from-soc (a node down, a route from the SOC): no area has a node any more, so the hosts behind
    it are managed, planned and probed from the SOC, and the lockout check asks for that path."""
    direct = inv.from_soc()
    assert direct.manager_of(direct.hosts["z-ws21"]) is None and inv.manager_of(inv.hosts["z-ws21"]) is not None
    planned = policies(direct, SMB, {"subsidiary-z": _z_full(direct)})
    assert checks.check_management(direct, planned) == []
    soc, ws21 = ip(inv, "soc-console"), ip(inv, "z-ws21")
    assert planned["gw-z"].forward.verdict(Packet(soc, ws21, "tcp", 22))[0] == "accept"
    assert all("through" not in e for e in checks.reach_targets(direct, ["gw-z"]))


def test_the_gateway_counts_the_worms_attempts_per_sub_area_and_enforces_nothing_more(inv: Inventory) -> None:
    x = inv.area("subsidiary-x")
    office = x.sub_areas[0].qualified
    for st in ({"subsidiary-x": AreaState(posture="isolated")},
               {"subsidiary-x": AreaState(posture="isolated", quarantined={office})}):
        gw = policies(inv, SMB, st)["gw-x"]
        sensors = [r for r in gw.forward.rules if r.comment.startswith(posture.SENSOR)]
        assert {r.comment for r in sensors} == {f"{posture.SENSOR}tcp/4445 from {s.qualified}" for s in x.segments}
        bare = gw.model_copy(update={"forward": gw.forward.model_copy(update={"rules": [
            r for r in gw.forward.rules if not r.comment.startswith(posture.SENSOR)]})})
        hosts = ["x-ws11", "x-ws21", "x-lt1", "hq-ws1", "hq-erp", "soc-console", "inet-web"]
        for a in hosts:
            for b in hosts:
                for port in (22, 4445, 8069):
                    pkt = Packet(ip(inv, a), ip(inv, b), "tcp", port)
                    assert gw.forward.verdict(pkt)[0] == bare.forward.verdict(pkt)[0], (a, b, port)
        # the worm's attempt from subsidiary-x at hq is what its sub-area's sensor counts
        x11 = ip(inv, "x-ws11")
        segment = next(s.qualified for s in x.segments if x11 in s.prefix)
        assert gw.forward.verdict(Packet(x11, ip(inv, "hq-ws1"), "tcp", 4445)) == \
            ("drop", f"{posture.SENSOR}tcp/4445 from {segment}")
    assert not [r for r in policies(inv, [], {"subsidiary-x": AreaState(posture="isolated")})["gw-x"].forward.rules
                if r.comment.startswith(posture.SENSOR)]  # no vector, no sensor


def test_the_worms_attempts_are_read_from_the_planned_counters_per_sub_area(inv: Inventory) -> None:
    from orchestrator.identification.boundary import boundary_drops

    planned = policies(inv, SMB, {"subsidiary-x": AreaState(posture="isolated", vectors_blocked=True)})
    office = inv.hosts["x-ws11"].segment
    counted = {"gw-x": {f"{posture.SENSOR}tcp/4445 from {office}": 4, "area subsidiary-x isolated: leaving": 9,
                        f"{posture.SENSOR}tcp/4445 from elsewhere/forged": 50},  # a comment irm did not plan
               "x-ws11": {"vector tcp/4445 outbound": 30, "vector tcp/4445 inbound": 2},
               "x-ws12": {"vector tcp/4445 outbound": 0}, "hq-ws1": {"vector tcp/4445 outbound": 7}}
    drops = boundary_drops(inv, planned, counted)
    assert drops == {office: {"packets": 34, "at": {"gw-x": 4, "x-ws11": 30, "x-ws12": 0}}}
