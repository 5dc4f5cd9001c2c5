"""The Windows paths, through real Ansible and real pywinrm, against a recording WinRM endpoint.

Windows, WSUS and AD cannot run here. What can be proven is what irm's Windows tasks send: the
endpoint (tests/winrm_endpoint.py) runs in a network namespace of its own, on a lab address, speaks
WS-Management to pywinrm, runs nothing and records every command. These tests run irm's playbooks
with Ansible's winrm connection against it and check, byte for byte, the PowerShell scripts and the
parameters each task would run on which host. Whether that PowerShell works on Windows is not
proven here (docs/proven.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core import runner
from orchestrator.core.posture import ChainPolicy, Policy, Rule, windows_differences
from orchestrator.lab.builder import tcp_open
from orchestrator.remediation.plan import plan_from_file
from tests.conftest import COLLECTION, ROOT
from tests.integration.lab_tools import wait_for

pytestmark = pytest.mark.lab

FILES = COLLECTION / "roles" / "remediation" / "files"
NS = f"irmwin{os.getpid() % 10000}"
HOST_IF, NS_IF = f"{NS}h", f"{NS}n"
ADDRESS = "198.19.32.2"  # lab addresses only, in a namespace of the test's own
VERIFIED: dict[str, list[str]] = {"infected": [], "unfixed": [], "unhealthy": []}


@dataclass
class Endpoint:
    record: Path
    inventory: Path
    rules: Path  # what the endpoint answers irm's read of its rule group (Get-NetFirewallRule)

    def holds(self, rules: list[dict[str, Any]]) -> None:
        """Play back these rules, as Windows prints them, when irm reads its rule group."""
        self.rules.write_text(json.dumps({"changed": False, "result": {"rules": rules}, "output": [], "error": [],
                                          "warning": [], "verbose": [], "debug": [], "information": [],
                                          "host_out": "", "host_err": ""}))

    def calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(user, module, module args) of every Ansible module run the endpoint received."""
        out = []
        for line in self.record.read_text().splitlines():
            rec = json.loads(line)
            parts = rec["stdin"].split("\n\0\0\0\0\n")
            if len(parts) < 2:
                continue
            for action in json.loads(parts[1])["actions"]:
                if action["name"] != "module_wrapper.ps1":
                    continue
                module = action["params"]["Script"].split(".modules.")[1].removesuffix(".ps1")
                args = next(v["Value"] for v in action["params"]["Variables"] if v["Name"] == "complex_args")
                out.append((rec["user"], module, args))
        return out

    def reset(self) -> None:
        self.record.write_text("")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    tmp = tmp_path_factory.mktemp("winrm")
    record = tmp / "record.jsonl"
    record.write_text("")
    rules = tmp / "rules.json"
    inventory = tmp / "inventory"
    inventory.mkdir()
    windows = {"ansible_host": ADDRESS, "ansible_connection": "winrm", "ansible_winrm_transport": "basic",
               "ansible_winrm_scheme": "http", "ansible_port": 5985, "ansible_password": "test-endpoint",
               "irm_os": "windows"}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"vars": windows, "hosts": {
        "win1": {"ansible_user": "win1-admin"}, "win2": {"ansible_user": "win2-admin"},
        "wsus1": {"ansible_user": "wsus1-admin"}, "dc1": {"ansible_user": "dc1-admin"}}}}))
    proc = None
    _ip("netns", "add", NS)
    try:
        _ip("link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        _ip("link", "set", NS_IF, "netns", NS)
        _ip("addr", "add", "198.19.32.1/30", "dev", HOST_IF)
        _ip("link", "set", HOST_IF, "up")
        _ip("netns", "exec", NS, "ip", "addr", "add", f"{ADDRESS}/30", "dev", NS_IF)
        _ip("netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        canned = {"changed": True, "result": VERIFIED, "output": [], "error": [], "warning": [], "verbose": [],
                  "debug": [], "information": [], "host_out": "", "host_err": ""}
        proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, "-m", "tests.winrm_endpoint", "--listen", f"{ADDRESS}:5985",
             "--record", str(record), "--stdout", json.dumps(canned), "--stdout-for",
             'win_updates={"failed": true, "msg": "test endpoint: Windows Update is not simulated"}',
             "--stdout-file-when", f"Get-NetFirewallAddressFilter={rules}"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: tcp_open(ADDRESS, 5985), 10, "the recording WinRM endpoint to listen", interval=0.1)
        endpoint = Endpoint(record=record, inventory=inventory, rules=rules)
        endpoint.holds([])
        yield endpoint
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def _plan() -> dict[str, Any]:
    plan = plan_from_file(ROOT / "plans" / "lab-worm.yml").model_dump(mode="json")
    plan["fixes"]["windows"] = ["KB5005565", "KB5006670"]
    plan["disinfection"] = {"processes": ["labworm.exe"], "files": ["C:\\Windows\\Temp\\labworm.exe"],
                            "services": ["LabWormSvc"], "registry_keys": ["HKLM:\\SOFTWARE\\LabWorm"]}
    plan["gpo"] = {"name": "IRM - disable SMBv1", "settings": [
        {"key": "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters", "value_name": "SMB1",
         "type": "DWord", "value": 0}]}
    return plan


def _run(endpoint: Endpoint, method: str, **extra: Any) -> runner.RunResult:
    endpoint.reset()
    return runner.run_playbook(f"remediate_{method}", endpoint.inventory, extravars={
        "irm_plan": _plan(), "irm_targets_windows": "win1,win2", "irm_targets_linux": "all:!all", **extra})


def _script(name: str) -> str:
    return (FILES / name).read_text().rstrip("\n")  # the file lookup drops the final newline


def test_antivirus_sends_the_defender_script_with_the_plans_signature_version(endpoint: Endpoint) -> None:
    result = _run(endpoint, "antivirus")
    assert result.succeeded, result
    calls = [(u, a) for u, m, a in endpoint.calls() if m == "win_powershell"]
    assert sorted(u for u, _ in calls) == ["win1-admin", "win2-admin"]
    for _, args in calls:
        assert args["script"] == _script("antivirus.ps1")
        assert args["parameters"] == {"SignatureVersion": "2026.11.1"}


def test_disinfection_sends_the_plans_processes_files_services_and_keys(endpoint: Endpoint) -> None:
    result = _run(endpoint, "disinfect")
    assert result.succeeded, result
    calls = [a for _, m, a in endpoint.calls() if m == "win_powershell"]
    assert len(calls) == 2
    assert calls[0]["script"] == _script("disinfect.ps1")
    assert calls[0]["parameters"] == {"Processes": ["labworm.exe"], "Files": ["C:\\Windows\\Temp\\labworm.exe"],
                                      "Services": ["LabWormSvc"], "RegistryKeys": ["HKLM:\\SOFTWARE\\LabWorm"]}


def test_wsus_approves_on_the_wsus_server_then_clients_install_from_it(endpoint: Endpoint) -> None:
    result = _run(endpoint, "wsus", remediation_wsus_server="wsus1", remediation_wsus_target_group="Subsidiary X")
    calls = endpoint.calls()
    approvals = [(u, a) for u, m, a in calls if m == "win_powershell"]
    assert approvals == [("wsus1-admin", {**approvals[0][1], "script": _script("wsus_approve.ps1"),
                                          "parameters": {"Kb": ["KB5005565", "KB5006670"],
                                                         "TargetGroup": "Subsidiary X"}})]
    starts = [(u, a) for u, m, a in calls if m == "win_updates" and a.get("_operation") == "start"]
    assert sorted(u for u, _ in starts) == ["win1-admin", "win2-admin"]
    for _, args in starts:
        assert args["server_selection"] == "managed_server"
        assert args["accept_list"] == ["KB5005565", "KB5006670"] and args["state"] == "installed"
    # The endpoint does not simulate Windows Update: the clients' install fails, and says why.
    assert sorted(result.failed_hosts) == ["win1", "win2"]
    assert "Windows Update is not simulated" in " ".join(result.hosts["win1"].failures)


def test_gpo_is_created_and_linked_on_the_domain_controller_then_applied(endpoint: Endpoint) -> None:
    ou = "OU=Subsidiary-X,DC=corp,DC=example"
    result = _run(endpoint, "gpo", remediation_gpo_server="dc1", remediation_gpo_target_ou=ou)
    assert result.succeeded, result
    calls = endpoint.calls()
    gpo = [(u, a) for u, m, a in calls if m == "win_powershell"]
    assert [u for u, _ in gpo] == ["dc1-admin"]
    assert gpo[0][1]["script"] == _script("gpo_apply.ps1")
    assert gpo[0][1]["parameters"] == {"Name": "IRM - disable SMBv1", "Settings": _plan()["gpo"]["settings"],
                                       "TargetOu": ou}
    updates = sorted((u, a["_raw_params"] if "_raw_params" in a else a.get("cmd")) for u, m, a in calls
                     if m == "win_command")
    assert updates == [("win1-admin", "gpupdate.exe /target:computer /force"),
                       ("win2-admin", "gpupdate.exe /target:computer /force")]


def test_verification_reports_to_irm_through_the_runner(endpoint: Endpoint) -> None:
    health = {"win1": [{"name": "erp-orders", "address": "198.18.16.10", "port": 8069}], "win2": []}
    result = _run(endpoint, "verify", irm_health=health)
    assert result.succeeded, result
    assert result.hosts["win1"].facts["irm_verification"] == VERIFIED
    calls = {u: a for u, m, a in endpoint.calls() if m == "win_powershell"}
    assert calls["win1-admin"]["script"] == _script("verify.ps1")
    assert calls["win1-admin"]["parameters"] == {
        "Processes": ["labworm.exe"], "Files": ["C:\\Windows\\Temp\\labworm.exe"],
        "RegistryKeys": ["HKLM:\\SOFTWARE\\LabWorm"], "Kb": ["KB5005565", "KB5006670"],
        "Health": health["win1"]}
    assert calls["win2-admin"]["parameters"]["Health"] == []


def _vectors_policy() -> Policy:
    mgmt = Rule(action="accept", src=[IPv4Network("198.18.0.2/32")], protocol="tcp", dports=[5985, 5986],
                comment="management from the SOC")
    drop_in = Rule(action="drop", protocol="tcp", dports=[4445], comment="vector tcp/4445 inbound")
    drop_out = Rule(action="drop", protocol="tcp", dports=[4445], comment="vector tcp/4445 outbound")
    return Policy(host="win1", label="vectors blocked", input=ChainPolicy(rules=[mgmt, drop_in]),
                  output=ChainPolicy(rules=[drop_out]))


# What Get-NetFirewallRule and its port and address filters print for the three rules above, once in
# place: written out by hand as Windows shows them (a single address without its /32, "Any" for none).
AS_WINDOWS_PRINTS: list[dict[str, Any]] = [
    {"name": "irm in 0: management from the SOC", "direction": "Inbound", "action": "Allow", "enabled": "True",
     "profile": "Domain, Private, Public", "protocol": "TCP", "local_port": ["5985", "5986"],
     "remote_port": ["Any"], "local_address": ["Any"], "remote_address": ["198.18.0.2"]},
    {"name": "irm in 1: vector tcp/4445 inbound", "direction": "Inbound", "action": "Block", "enabled": "True",
     "profile": "Any", "protocol": "TCP", "local_port": ["4445"], "remote_port": ["Any"],
     "local_address": ["Any"], "remote_address": ["Any"]},
    {"name": "irm out 0: vector tcp/4445 outbound", "direction": "Outbound", "action": "Block", "enabled": "True",
     "profile": "Any", "protocol": "TCP", "local_port": ["Any"], "remote_port": ["4445"],
     "local_address": ["Any"], "remote_address": ["Any"]}]


def _vectors_stage(endpoint: Endpoint, **extra: Any) -> runner.RunResult:
    endpoint.reset()
    return runner.run_playbook("contain_3_vectors", endpoint.inventory, extravars={**extra,
        "irm_targets_windows": "win1", "irm_targets_linux": "all:!all",
        "irm_policies": {"win1": _vectors_policy().model_dump(mode="json")},
        "irm_reach": {"win1": [{"host": "win1", "address": ADDRESS, "port": 5985}]},
        "irm_host_state_dir": "C:\\irm",
        "firewall_policy_confirm_timeout": 60})


def test_vectors_stage_on_windows_sends_firewall_rules_removable_storage_policy_and_dead_man(
        endpoint: Endpoint) -> None:
    endpoint.holds(AS_WINDOWS_PRINTS)
    result = _vectors_stage(endpoint)
    assert result.succeeded, result
    calls = [(m, a) for _, m, a in endpoint.calls()]
    rules = [a for m, a in calls if m == "win_firewall_rule"]
    assert [(r["name"], r["direction"], r["action"], r.get("localport") or r.get("remoteport"), r.get("remoteip"))
            for r in rules] == [
        ("irm in 0: management from the SOC", "in", "allow", "5985,5986", "198.18.0.2/32"),
        ("irm in 1: vector tcp/4445 inbound", "in", "block", "4445", None),
        ("irm out 0: vector tcp/4445 outbound", "out", "block", "4445", None)]
    assert all(r["group"] == "irm-containment" for r in rules)
    scripts = [a for m, a in calls if m == "win_powershell"]
    arm = next(a for a in scripts if "Register-ScheduledTask" in a["script"])
    assert arm["parameters"] == {"Path": "C:\\irm\\firewall\\previous.wfw", "Seconds": 60}
    stale = next(a for a in scripts if "Remove-NetFirewallRule" in a["script"])
    assert stale["parameters"]["Keep"] == [r["name"] for r in rules]
    # the rule group is read back before the confirm, and the confirm is the last thing sent
    assert "Get-NetFirewallAddressFilter" in scripts[-2]["script"]
    assert scripts[-2]["parameters"] == {"Group": "irm-containment"}
    assert "Unregister-ScheduledTask" in scripts[-1]["script"]
    assert "throw 'no dead-man timer armed any more" in scripts[-1]["script"]  # a fired timer fails the stage
    assert result.hosts["win1"].facts["irm_live_fingerprint"] == _vectors_policy().fingerprint
    regedit = [(a["path"], a["name"], a["data"]) for m, a in calls if m == "win_regedit"]
    assert regedit == [("HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices", "Deny_All", 1),
                       ("HKLM:\\SYSTEM\\CurrentControlSet\\Services\\USBSTOR", "Start", 4)]


def test_a_rule_group_that_is_not_the_plan_is_never_confirmed(endpoint: Endpoint) -> None:
    """The read-back gates the confirm: one block rule missing from the group (deleted, or never
    created) and the stage fails without stopping the dead-man timer, which restores the previous policy."""
    endpoint.holds([r for r in AS_WINDOWS_PRINTS if r["name"] != "irm in 1: vector tcp/4445 inbound"])
    result = _vectors_stage(endpoint)
    assert result.failed_hosts == ["win1"], result
    failure = " ".join(result.hosts["win1"].failures)
    assert "rule missing: irm in 1: vector tcp/4445 inbound (in block tcp 4445)" in failure, failure
    scripts = [a["script"] for _, m, a in endpoint.calls() if m == "win_powershell"]
    assert not [s for s in scripts if "Unregister-ScheduledTask" in s]


def test_status_verify_reads_the_rule_group_and_names_each_difference(endpoint: Endpoint) -> None:
    """What status --verify runs on a Windows host, and what it concludes: the rules read from Windows
    Firewall compared with the plan, never a file irm wrote there."""
    changed = [dict(r, remote_port=["4446"]) if r["direction"] == "Outbound" else r for r in AS_WINDOWS_PRINTS]
    changed.append({"name": "irm in 7: left by hand", "direction": "Inbound", "action": "Allow", "enabled": "True",
                    "profile": "Any", "protocol": "Any", "local_port": ["Any"], "remote_port": ["Any"],
                    "local_address": ["Any"], "remote_address": ["198.18.0.0/255.254.0.0"]})
    for live, expected in ((AS_WINDOWS_PRINTS, []), (changed, [
            "rule not planned: irm in 7: left by hand (in allow any 198.18.0.0/15)",
            "rule irm out 0: vector tcp/4445 outbound: remoteport 4446 live, 4445 planned"])):
        endpoint.reset()
        endpoint.holds(live)
        result = runner.run_playbook("firewall_read", endpoint.inventory, extravars={
            "irm_targets_windows": "win1", "irm_targets_linux": "all:!all"})
        assert result.succeeded, result
        assert [m for _, m, _ in endpoint.calls()] == ["win_powershell"]  # a read, nothing else
        assert windows_differences(_vectors_policy(), result.hosts["win1"].facts["irm_live_windows_rules"]) == expected


def test_compare_and_swap_refuses_a_rule_group_the_journal_never_planned(endpoint: Endpoint) -> None:
    """The apply reads irm's rule group first; rules that render none of the policies this journal planned
    for the host (another journal's, a hand-made one) are refused before anything is sent."""
    empty = Policy(host="win1", label="open").model_dump(mode="json")
    planned = _vectors_policy().model_dump(mode="json")
    foreign = [dict(r, local_port=["1139"]) if str(r["name"]).startswith("irm in 1") else r for r in AS_WINDOWS_PRINTS]
    endpoint.holds(foreign)
    result = _vectors_stage(endpoint, irm_expect_policies={"win1": [empty, planned]})
    assert result.failed_hosts == ["win1"], result
    assert "compare-and-swap refused" in " ".join(result.hosts["win1"].failures)
    assert [m for _, m, _ in endpoint.calls()] == ["win_powershell"]  # the read, and nothing after it
    endpoint.holds(AS_WINDOWS_PRINTS)  # the group holds one of them (this plan, applied before): go on
    result = _vectors_stage(endpoint, irm_expect_policies={"win1": [empty, planned]})
    assert result.succeeded, result
