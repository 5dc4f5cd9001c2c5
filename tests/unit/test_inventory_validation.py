"""Every schema violation is reported with a one-line message naming the group/host and key at fault,
through ansible-core's real inventory loading and through the real CLI (exit 2, no traceback)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.errors import InventoryError, UnknownNameError
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import BIN, LAB_INVENTORY, irm

Mutation = Callable[[dict[str, Any]], None]


def _children(data: dict[str, Any]) -> dict[str, Any]:
    return data["all"]["children"]  # type: ignore[no-any-return]


def _area(data: dict[str, Any], group: str) -> dict[str, Any]:
    return _children(data)[group]  # type: ignore[no-any-return]


def _seg(data: dict[str, Any], area: str, seg: str) -> dict[str, Any]:
    return _area(data, area)["children"][seg]  # type: ignore[no-any-return]


def make_inventory(tmp_path: Path, mutate: Mutation) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv)
    hosts = inv / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    mutate(data)
    hosts.write_text(yaml.safe_dump(data, sort_keys=False))
    return inv


def problems(tmp_path: Path, mutate: Mutation) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load_inventory(make_inventory(tmp_path, mutate))
    return list(exc.value.problems)


def test_shipped_lab_inventory_is_valid() -> None:
    inv = load_inventory(LAB_INVENTORY)
    assert set(inv.areas) == {"hq", "subsidiary-x", "subsidiary-y", "subsidiary-z"}
    # subsidiary-z's jump host is an area host that runs its area's plays; it is managed from the SOC,
    # the other hosts of its area from it, every other host from the SOC
    node = inv.hosts["z-node"]
    assert node.kind == "area" and node.runs_jobs and inv.execution_nodes == [node]
    assert inv.manager_of(inv.hosts["z-ws21"]) == node and inv.manager_of(node) is None
    assert inv.manager_of(inv.hosts["gw-z"]) is None and inv.manager_of(inv.hosts["x-ws11"]) is None
    x = inv.area("subsidiary-x")
    assert [s.qualified for s in x.sub_areas] == ["subsidiary-x/office-1", "subsidiary-x/office-2"]
    assert [s.qualified for s in x.mobile_segments] == ["subsidiary-x/vpn"]
    assert x.gateway == "gw-x" and inv.hosts["gw-x"].kind == "gateway"
    assert inv.hosts["hq-erp"].services[0].name == "erp"
    # every host's state directory is its own, templated by ansible-core from the inventory
    dirs = {h.state_dir for h in inv.managed_hosts}
    assert len(dirs) == len(inv.managed_hosts)
    assert inv.hosts["x-ws11"].state_dir == "/var/lib/irm-lab/irmlab/hosts/x-ws11"


def test_unknown_area(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _children(d)["subarea_branch_z__floor_1"] = {"vars": {"irm_prefix": "198.18.64.0/24"}}

    assert problems(tmp_path, mutate) == [
        f"{tmp_path}/inv: group 'subarea_branch_z__floor_1': unknown area 'branch-z' "
        "(there is no group 'area_branch_z')"
    ]


def test_unknown_area_typed_by_operator() -> None:
    inv = load_inventory(LAB_INVENTORY)
    with pytest.raises(UnknownNameError, match=r"unknown area 'subsidiary-w'.*areas in .*: hq, subsidiary-x, "
                                               r"subsidiary-y, subsidiary-z"):
        inv.area("subsidiary-w")
    with pytest.raises(UnknownNameError, match="that is a group name; the area is 'subsidiary-x'"):
        inv.area("area_subsidiary_x")


def test_host_in_two_areas(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _seg(d, "area_hq", "subarea_hq__office")["hosts"]["x-ws11"] = None

    found = problems(tmp_path, mutate)
    assert f"{tmp_path}/inv: host 'x-ws11': is in two areas, 'hq' and 'subsidiary-x'" in found


def test_overlapping_prefixes(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _seg(d, "area_subsidiary_x", "subarea_subsidiary_x__office_2")["vars"]["irm_prefix"] = "198.18.32.0/23"

    found = problems(tmp_path, mutate)
    assert (f"{tmp_path}/inv: group 'subarea_subsidiary_x__office_2': prefix 198.18.32.0/23 overlaps "
            "198.18.32.0/24 of group 'subarea_subsidiary_x__office_1'") in found


def test_address_outside_its_sub_area(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        office_1 = _seg(d, "area_subsidiary_x", "subarea_subsidiary_x__office_1")
        office_1["hosts"]["x-ws12"]["ansible_host"] = "198.18.33.99"

    assert problems(tmp_path, mutate) == [
        f"{tmp_path}/inv: host 'x-ws12', key 'ansible_host': 198.18.33.99 is outside its sub-area "
        "'subsidiary-x/office-1' prefix 198.18.32.0/24"
    ]


def test_gateway_missing(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        del _area(d, "area_hq")["vars"]["irm_gateway"]

    assert problems(tmp_path, mutate) == [
        f"{tmp_path}/inv: group 'area_hq', key 'irm_gateway': is missing: every area needs the gateway "
        "(a host of group 'gateways') that separates it"
    ]


def test_gateway_not_a_gateway(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _area(d, "area_hq")["vars"]["irm_gateway"] = "edge-fw"

    assert problems(tmp_path, mutate) == [
        f"{tmp_path}/inv: group 'area_hq', key 'irm_gateway': 'edge-fw' is not a host of group 'gateways'"
    ]


@pytest.mark.parametrize("side", ["sources", "destinations"])
def test_critical_flow_from_or_to_everything(tmp_path: Path, side: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _area(d, "area_subsidiary_x")["vars"]["irm_critical_flows"][0][side] = ["0.0.0.0/0"]

    word = side[:-1]
    assert problems(tmp_path, mutate) == [
        f"{tmp_path}/inv: group 'area_subsidiary_x', critical flow 'erp-orders': {word} '0.0.0.0/0' is the "
        "whole address space; name explicit hosts or prefixes"
    ]


def test_critical_flow_field_errors_name_the_flow(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        flow = _area(d, "area_subsidiary_x")["vars"]["irm_critical_flows"][0]
        flow["protocol"] = "icmp"
        flow["color"] = "red"

    found = problems(tmp_path, mutate)
    assert any("key 'irm_critical_flows[erp-orders].protocol'" in p and "'tcp' or 'udp'" in p for p in found)
    assert any("key 'irm_critical_flows[erp-orders].color': Extra inputs are not permitted" in p for p in found)


def test_misspelt_irm_key(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _seg(d, "area_hq", "subarea_hq__office")["vars"]["irm_prefx"] = "198.18.17.0/24"

    found = problems(tmp_path, mutate)
    assert f"{tmp_path}/inv: group 'subarea_hq__office', key 'irm_prefx': unknown irm key (misspelt?)" in found


def test_bad_group_name_and_orphan_sub_area(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _children(d)["area_Bad__name"] = {"hosts": {}}
        seg = _area(d, "area_hq")["children"].pop("subarea_hq__office")
        _children(d)["subarea_hq__office"] = seg

    found = problems(tmp_path, mutate)
    assert any(p.endswith("group 'area_Bad__name': not a valid irm group name (expected area_<area>, "
                          "subarea_<area>__<name> or mobile_<area>__<name>, names in lowercase words joined "
                          "by '_')") for p in found)
    assert f"{tmp_path}/inv: group 'subarea_hq__office': must be a child of its area group 'area_hq'" in found


def test_several_problems_reported_together(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        del _area(d, "area_hq")["vars"]["irm_gateway"]
        _seg(d, "area_hq", "subarea_hq__office")["hosts"]["hq-ws1"]["ansible_host"] = "not-an-ip"

    found = problems(tmp_path, mutate)
    assert len(found) == 2
    assert any("host 'hq-ws1', key 'ansible_host': 'not-an-ip' is not an IPv4 address" in p for p in found)


def test_cli_prints_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        del _area(d, "area_hq")["vars"]["irm_gateway"]
        _area(d, "area_subsidiary_x")["vars"]["irm_critical_flows"][0]["sources"] = ["0.0.0.0/0"]

    inv = make_inventory(tmp_path, mutate)
    proc = irm("validate", "-i", str(inv))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert all(line.startswith("irm: error: ") for line in lines)
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_missing_inventory() -> None:
    proc = irm("validate", "-i", "/nonexistent/inventory")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("irm: error: inventory '/nonexistent/inventory' does not exist: pass -i PATH or set "
                                   "IRM_INVENTORY")


def test_cli_unparsable_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text("all:\n  children: [unclosed\n")
    proc = irm("validate", "-i", str(inv))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"irm: error: inventory '{inv}' cannot be parsed")
    assert "Traceback" not in proc.stderr


def test_a_vault_encrypted_irm_key_decrypts_with_the_password_file(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv)
    password = tmp_path / "vault-pass"
    password.write_text("irm-test-vault-password\n")
    enc = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(password), "CHF",
                          "--name", "irm_currency"], capture_output=True, text=True, check=True).stdout
    all_yml = inv / "group_vars" / "all.yml"
    all_yml.write_text(re.sub(r"^irm_currency: EUR.*$", lambda _: enc.rstrip("\n"), all_yml.read_text(), flags=re.M))
    code = ("import sys; from orchestrator.core.inventory.load import load_inventory; "
            "print(load_inventory(sys.argv[1]).costs.currency)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_VAULT")}
    ok = subprocess.run([sys.executable, "-c", code, str(inv)], capture_output=True, text=True,
                        env={**env, "ANSIBLE_VAULT_PASSWORD_FILE": str(password)})
    assert ok.returncode == 0 and ok.stdout.strip() == "CHF", ok.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    proc = irm("validate", "-i", str(inv), env={"ANSIBLE_VAULT_PASSWORD_FILE": str(wrong)})
    assert proc.returncode == 2 and "key 'irm_currency'" in proc.stderr and "Decryption failed" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _gw_hq(d: dict[str, Any]) -> dict[str, Any]:
    return _children(d)["boundaries"]["children"]["gateways"]["hosts"]["gw-hq"]  # type: ignore[no-any-return]


IOS = {"irm_boundary_kind": "cisco_ios", "ansible_connection": "ansible.netcommon.network_cli",
       "ansible_network_os": "cisco.ios.ios", "irm_ios_interfaces": ["GigabitEthernet0/0", "GigabitEthernet0/1.40"]}


def test_an_ios_boundary_is_declared_with_its_connection_and_interfaces(tmp_path: Path) -> None:
    inv = load_inventory(make_inventory(tmp_path, lambda d: _gw_hq(d).update(IOS)))
    gw = inv.hosts["gw-hq"]
    assert gw.boundary_kind == "cisco_ios" and gw.ios_interfaces == ("GigabitEthernet0/0", "GigabitEthernet0/1.40")
    assert inv.hosts["gw-x"].boundary_kind == "nftables"  # the default
    # irm's read-back logs in as Ansible does, and checks the device's key against the known hosts given
    assert gw.login is not None and gw.login.user == "root" and gw.login.port == 22
    assert gw.login.key_file.endswith("/ssh/id_ed25519") and gw.login.known_hosts == "~/.ssh/known_hosts"
    assert inv.hosts["gw-x"].login is None


@pytest.mark.parametrize(("change", "message"), [
    ({"ansible_network_os": "cisco.nxos.nxos"},
     "host 'gw-hq', key 'ansible_network_os': must be cisco.ios.ios for an IOS boundary (got 'cisco.nxos.nxos')"),
    ({"ansible_connection": None},
     "host 'gw-hq', key 'ansible_connection': must be ansible.netcommon.network_cli for an IOS boundary (got None)"),
    ({"irm_ios_interfaces": None},
     "host 'gw-hq', key 'irm_ios_interfaces': is missing: an IOS boundary names the routed interfaces irm binds its "
     "access list on"),
    ({"irm_ios_interfaces": ["Gi0/0; reload"]},
     "host 'gw-hq', key 'irm_ios_interfaces.0': String should match pattern"),
    ({"irm_boundary_kind": "junos"},
     "host 'gw-hq', key 'irm_boundary_kind': Input should be 'nftables' or 'cisco_ios'"),
    ({"ansible_ssh_private_key_file": ""},
     "host 'gw-hq', key 'ansible_ssh_private_key_file': is missing: irm's own read-back of an IOS boundary (netmiko) "
     "logs in with the user and key Ansible uses"),
    ({"ansible_port": 70000}, "host 'gw-hq', key 'ansible_port"),
    ({"irm_boundary_kind": "nftables"},
     "host 'gw-hq', key 'irm_ios_interfaces': belongs to an IOS boundary (irm_boundary_kind: cisco_ios)"),
])
def test_an_ios_boundary_declared_wrong_is_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    def mutate(d: dict[str, Any]) -> None:
        host = _gw_hq(d)
        host.update(IOS)
        for key, value in change.items():
            if value is None:
                host.pop(key)
            else:
                host[key] = value

    line = problems(tmp_path, mutate)[0]  # (then the area's gateway, unknown since its host was refused)
    assert line.startswith(f"{tmp_path}/inv: {message}"), line


def test_the_boundary_kind_belongs_to_boundaries(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _seg(d, "area_hq", "subarea_hq__servers")["hosts"]["hq-erp"]["irm_boundary_kind"] = "cisco_ios"

    assert problems(tmp_path, mutate)[0] == (
        f"{tmp_path}/inv: host 'hq-erp', key 'irm_boundary_kind': is for boundaries (edge, gateways, core), not a host "
        "of kind 'area'")


def test_an_area_names_its_execution_node(tmp_path: Path) -> None:
    """An area's plays may run on an execution node (group execution_nodes); the node's SSH options come
    from its ansible_ssh_common_args and key; an area naming a host that is not a node is refused."""
    import shutil

    import yaml

    from orchestrator.core.errors import InventoryError
    from orchestrator.core.inventory.load import load_inventory
    from orchestrator.core.nodes import execution_node

    dest = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, dest)
    data = yaml.safe_load((dest / "hosts.yml").read_text())
    children = data["all"]["children"]
    children["execution_nodes"]["hosts"] |= {"node-x": {
        "ansible_host": "198.18.0.30", "ansible_ssh_common_args": "-o UserKnownHostsFile=/etc/irm/known 'x y'",
        "irm_node_runner": "/opt/irm/venv/bin/ansible-runner"}}
    children["area_subsidiary_x"]["vars"]["irm_execution_node"] = "node-x"
    (dest / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    inv = load_inventory(dest)
    node = inv.node_of("subsidiary-x")
    assert node is not None and node.kind == "node" and inv.node_of("hq") is None
    ex = execution_node(node)
    assert ex.runner == "/opt/irm/venv/bin/ansible-runner" and ex.user == "root"
    assert ex.ssh_command("true")[-5:] == ["-o", "UserKnownHostsFile=/etc/irm/known", "x y", "root@198.18.0.30",
                                           "true"]
    assert ex.ssh_options[:2] == ("-i", f"{inv.lab.state_dir}/ssh/id_ed25519")  # type: ignore[union-attr]
    children["area_subsidiary_x"]["vars"]["irm_execution_node"] = "hq-ws1"
    (dest / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InventoryError, match="irm_execution_node': 'hq-ws1' is not a host of group 'execution_nodes'"):
        load_inventory(dest)
