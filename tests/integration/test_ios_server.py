"""The emulated IOS device over real SSH, in a namespace of its own: netmiko (as irm's verification will)
logs in, configures an access list and binds it, reads it back; the change is in the namespace's
nftables at once; a single command over OpenSSH's client works; an unconfirmed change under a revert
timer is rolled back by the device itself, in its config and its nftables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.core import ios_readback
from orchestrator.lab import ios_enforce
from orchestrator.lab.ios_server import load_config
from tests.conftest import ROOT, module_util
from tests.integration.ios_device import PORT, device, nft, readback, shell, ssh
from tests.integration.lab_tools import wait_for

pytestmark = pytest.mark.lab

irm_ios_render = module_util("irm_ios_render")

__all__ = ["device"]  # the fixture, imported for pytest
CLIENT = r'''
import json, sys
from netmiko import ConnectHandler
c = ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=int(sys.argv[2]), username="irm",
                   key_file=sys.argv[1], use_keys=True, allow_agent=False, ssh_strict=False,
                   system_host_keys=False, fast_cli=False)
out = {"prompt": c.find_prompt()}
c.enable()
out["enabled"] = c.find_prompt()
out["config"] = c.send_config_set(["ip access-list extended IRM-T-IN", "10 deny tcp any any eq 4445",
                                   "20 permit ip any any", "exit", "interface GigabitEthernet0/1",
                                   "ip access-group IRM-T-IN in"])
out["acls"] = c.send_command("show access-lists")
out["bad"] = c.send_command("show ip bgp summary")
c.disconnect()
print(json.dumps(out))
'''


def test_netmiko_configures_reads_back_and_the_kernel_enforces(device: tuple[str, Path, Path]) -> None:
    ns, state, key = device
    assert nft(ns).count("jump") == 0  # nothing bound yet
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, str(key), str(PORT)],
                          capture_output=True,
                          text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["prompt"] == "gw-ios>" and out["enabled"] == "gw-ios#"
    lines = [x.strip() for x in out["acls"].strip().splitlines()]
    assert lines[:2] == ["Extended IP access list IRM-T-IN", "10 deny tcp any any eq 4445"]
    # netmiko's own session arrives on lo: the permit counts its packets, as on IOS
    assert re.fullmatch(r"20 permit ip any any \(\d+ matches\)", lines[2]), lines
    assert "% Invalid input detected at '^' marker." in out["bad"]
    # saved whole, and enforced on the namespace's traffic at once
    assert load_config(state / "config.json").interfaces["GigabitEthernet0/1"].acl_in == "IRM-T-IN"
    rules = nft(ns)
    assert 'iifname "lo" jump acl_IRM-T-IN' in rules
    assert 'tcp dport 4445 counter packets 0 bytes 0 drop comment "IRM-T-IN 10"' in rules
    # a single command over OpenSSH
    assert "Cisco IOS Software" in ssh(ns, key, "show version")
    # the worm's attempt is dropped and counted: show access-lists prints the kernel's count as IOS does
    knock = "import socket\ntry:\n socket.create_connection(('127.0.0.1', 4445), timeout=1.5)\nexcept OSError:\n pass"
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", knock], check=True, timeout=30)
    shown = ssh(ns, key, "show access-lists")
    kernel = ios_enforce.hits(subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "ios"],
                                             capture_output=True, text=True, check=True).stdout)
    assert kernel[("IRM-T-IN", 10)] >= 1, kernel
    assert ios_readback.parse_matches(shown)[("IRM-T-IN", 10)] == kernel[("IRM-T-IN", 10)], shown
    assert ios_readback.parse_access_lists(shown)["IRM-T-IN"][0] == (10, "deny tcp any any eq 4445")


def test_an_unconfirmed_change_is_rolled_back_by_the_device(device: tuple[str, Path, Path]) -> None:
    ns, state, key = device
    # (the device's GigabitEthernet0/1 is the namespace's loopback, this very session's path: the list
    # keeps SSH open, as irm's lockout check would insist)
    script = "\n".join(["enable", "configure terminal revert timer 1", "ip access-list extended IRM-T-IN",
                        "deny tcp any any eq 4445", "permit ip any any", "exit", "interface GigabitEthernet0/1",
                        "ip access-group IRM-T-IN in",
                        "end", "show archive config rollback timer", "exit", ""])
    proc = subprocess.run(["ip", "netns", "exec", ns, "ssh", "-tt", "-p", str(PORT), "-i", str(key), "-o",
                           "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "irm@127.0.0.1"], input=script, capture_output=True, text=True,
                          timeout=30, check=False)
    assert "Timer type: Revert timer" in proc.stdout, proc.stdout + proc.stderr
    assert "jump acl_IRM-T-IN" in nft(ns)
    started = time.monotonic()
    wait_for(lambda: "jump" not in nft(ns), 15, "the revert timer's rollback in nftables")
    assert time.monotonic() - started < 15  # one emulated minute is 4 s here
    assert load_config(state / "config.json").acls == {}
    assert "%No Rollback Confirmed Change pending" in ssh(ns, key, "show archive config rollback timer")


PLAYBOOK = """
- name: An irm access list on the emulated device, commit-confirmed, through cisco.ios over network_cli
  hosts: gw
  gather_facts: false
  tasks:
    - name: The list, replaced whole
      cisco.ios.ios_acls:
        state: replaced
        config:
          - afi: ipv4
            acls:
              - name: IRM-GW-IN
                acl_type: extended
                aces:
                  - {sequence: 10, grant: deny, protocol: tcp, source: {any: true},
                     destination: {any: true, port_protocol: {eq: "4445"}}}
                  - {sequence: 20, grant: permit, protocol: ip, source: {any: true}, destination: {any: true}}
      vars: {ansible_ios_commit_confirm_timeout: 1}
      register: acls
    - name: Pending until confirmed
      cisco.ios.ios_command: {commands: ["show archive config rollback timer", "configure confirm"]}
      register: pending
    - name: Read back by the resource module
      cisco.ios.ios_acls: {state: gathered}
      register: gathered
"""


def test_cisco_ios_over_network_cli_drives_the_emulator(device: tuple[str, Path, Path], tmp_path: Path) -> None:
    ns, state, key = device
    (tmp_path / "inv.yml").write_text(json.dumps({"all": {"hosts": {"gw": {
        "ansible_host": "127.0.0.1", "ansible_port": PORT, "ansible_connection": "ansible.netcommon.network_cli",
        "ansible_network_os": "cisco.ios.ios", "ansible_user": "irm", "ansible_ssh_private_key_file": str(key),
        "ansible_host_key_checking": False, "ansible_become": True, "ansible_become_method": "enable"}}}}))
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(["ip", "netns", "exec", ns, str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(tmp_path / "inv.yml"), str(tmp_path / "pb.yml")], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tasks = {t["task"]["name"]: t["hosts"]["gw"] for t in json.loads(proc.stdout)["plays"][0]["tasks"]}
    assert tasks["The list, replaced whole"]["commands"] == [
        "ip access-list extended IRM-GW-IN", "10 deny tcp any any eq 4445", "20 permit ip any any"]
    assert tasks["Pending until confirmed"]["stdout_lines"][0][:2] == ["Timer type: Revert timer", "Timer value: 1 min"]
    (acl,) = tasks["Read back by the resource module"]["gathered"][0]["acls"]
    assert acl["name"] == "IRM-GW-IN" and [a["sequence"] for a in acl["aces"]] == [10, 20]
    assert load_config(state / "config.json").acls["IRM-GW-IN"][0].text == "deny tcp any any eq 4445"
    assert "%No Rollback Confirmed Change pending" in ssh(ns, key, "show archive config rollback timer")


def test_netmiko_reads_back_what_was_written_and_names_every_difference(device: tuple[str, Path, Path]) -> None:
    ns, _, key = device
    aces = ["permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22", "permit tcp any any established",
            "deny tcp any any eq 4445", "permit ip any any"]
    name, iface = "IRM-GW-IOS-0123ABCD", "GigabitEthernet0/1"
    owned = irm_ios_render.owned
    lines = [f"ip access-list extended {name}", *[f"{10 * (i + 1)} {a}" for i, a in enumerate(aces)], "exit",
             f"interface {iface}", f"ip access-group {name} in", "exit"]
    shell(ns, key, "configure terminal", *lines, "ip access-list extended OPS-KEEP", "permit ip any any", "end")
    live = readback(ns, key)
    assert live.acls[name] == [(10 * (i + 1), a) for i, a in enumerate(aces)]
    assert live.bindings[iface] == {"in": name}
    assert ios_readback.compare(live, name=name, aces=aces, interfaces=[iface],
                                owned=lambda n: owned(n, "gw-ios")) == []
    # someone drops `established` from entry 20 and unbinds the list: both named
    shell(ns, key, "configure terminal", f"ip access-list extended {name}", "no 20",
           "20 permit tcp any any", "exit", f"interface {iface}", f"no ip access-group {name} in", "end")
    problems = ios_readback.compare(readback(ns, key), name=name, aces=aces, interfaces=[iface],
                                    owned=lambda n: owned(n, "gw-ios"))
    assert problems == [f"{name}: entry 20 is 'permit tcp any any', not 'permit tcp any any established'",
                        f"interface {iface}: no list bound in, not {name}"]


def test_a_routed_interface_irm_does_not_bind_on_is_named(device: tuple[str, Path, Path]) -> None:
    """show ip interface, read with netmiko: an interface with an address that is not in irm_ios_interfaces
    stays unfiltered, and the read-back says so; one without an address is no path."""
    ns, _, key = device
    live = readback(ns, key)
    assert ios_readback.unfiltered(live, ["GigabitEthernet0/1"]) == []  # Gi0/0 has no address: no path
    shell(ns, key, "configure terminal", "interface GigabitEthernet0/0", "ip address 198.18.99.1 255.255.255.0",
          "end")
    live = readback(ns, key)
    assert "GigabitEthernet0/0" in live.routed
    assert ios_readback.unfiltered(live, ["GigabitEthernet0/1"]) == [
        "interface GigabitEthernet0/0 is routed (it has an address) but not in irm_ios_interfaces: traffic through "
        "it is not filtered"]
    assert ios_readback.unfiltered(live, ["GigabitEthernet0/0", "GigabitEthernet0/1"]) == []
