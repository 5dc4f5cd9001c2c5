"""irm's firewall_policy role on an IOS boundary (the emulated device, over network_cli with cisco.ios'
resource modules): a policy becomes irm's access list bound in on every routed interface irm names,
commit-confirmed; a change makes before it breaks; the device's own lists and bindings are never
touched; re-applying changes nothing; an empty policy leaves the running-config exactly as it was before.
(A change whose management path is not proven: test_ios_deadman, through irm on the lab's gw-y.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab.ios_server import load_config
from tests.conftest import ROOT, module_util
from tests.integration.ios_device import PORT, device, nft, readback, shell, ssh
from tests.integration.lab_tools import wait_for

pytestmark = pytest.mark.lab
__all__ = ["device"]  # the fixture, imported for pytest

irm_ios_render = module_util("irm_ios_render")
ios_readback = __import__("orchestrator.core.ios_readback", fromlist=["compare"])

WAN, LAN = "GigabitEthernet0/0", "GigabitEthernet0/1"
IOS_MINUTE = 20  # seconds: a play confirms well within one emulated minute
PLAY = """
- name: irm's policy on an IOS boundary, commit-confirmed
  hosts: gw
  gather_facts: false
  tasks:
    - name: Apply
      ansible.builtin.import_role:
        name: irm.response.firewall_policy
    - name: Confirm
      ansible.builtin.import_role:
        name: irm.response.firewall_policy
        tasks_from: confirm
"""


def _policy(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"host": "gw-ios", "label": "test", "input": {"default": "accept", "rules": []},
            "forward": {"default": "accept", "rules": list(rules)}, "output": {"default": "accept", "rules": []}}


ISOLATE = _policy(
    {"action": "accept", "src": ["198.18.0.2/32"], "dst": ["198.18.48.0/24"], "protocol": "tcp", "dports": [22],
     "comment": "management"},
    {"action": "drop", "src": ["198.18.48.0/24"], "comment": "area isolated: leaving"},
    {"action": "accept", "established": True, "comment": "established connections"})
QUARANTINE = _policy(
    {"action": "drop", "src": ["198.18.49.0/24"], "comment": "sub-area quarantined"},
    *ISOLATE["forward"]["rules"])
OPEN = _policy()


def _play(ns: str, key: Path, tmp: Path, policy: dict[str, Any], fingerprint: str,
          reach: list[dict[str, Any]] | None = None, **extra: Any) -> tuple[int, dict[str, dict[str, Any]], str]:
    (tmp / "inv.json").write_text(json.dumps({"all": {"hosts": {"gw": {
        "ansible_host": "127.0.0.1", "ansible_port": PORT, "ansible_connection": "ansible.netcommon.network_cli",
        "ansible_network_os": "cisco.ios.ios", "ansible_user": "irm", "ansible_ssh_private_key_file": str(key),
        "ansible_host_key_checking": False, "ansible_become": True, "ansible_become_method": "enable"}}}}))
    (tmp / "play.yml").write_text(PLAY)
    (tmp / "vars.json").write_text(json.dumps({
        "firewall_policy_os": "ios", "firewall_policy_rules": policy, "firewall_policy_fingerprint": fingerprint,
        "firewall_policy_state_dir": str(tmp / "state"), "firewall_policy_ios_interfaces": [WAN, LAN],
        "firewall_policy_confirm_timeout": 60,
        "firewall_policy_reach": [{"host": "gw", "address": "127.0.0.1", "port": PORT}] if reach is None else reach,
        **extra}))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(["ip", "netns", "exec", ns, str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(tmp / "inv.json"), "-e", f"@{tmp / 'vars.json'}", str(tmp / "play.yml")],
                          capture_output=True, text=True, env=env, timeout=300, check=False, cwd=ROOT)
    try:
        tasks = {t["task"]["name"].split(" : ", 1)[-1]: t["hosts"]["gw"]
                 for t in json.loads(proc.stdout)["plays"][0]["tasks"]}
    except (ValueError, KeyError, IndexError):
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:]) from None
    return proc.returncode, tasks, proc.stdout + proc.stderr


APPLY = "Put irm's access list and its bindings in place in one configuration session, under the revert timer"
CONFIRM = "Read the device again under its revert timer; confirm only the exact plan, then save"


def _commands(tasks: dict[str, dict[str, Any]]) -> list[str]:
    """Every configuration command the apply sent (one session), in order."""
    return [] if tasks.get(APPLY, {}).get("skipped") else list(tasks.get(APPLY, {}).get("commands", []))


def test_policies_are_applied_confirmed_changed_and_removed_leaving_the_device_as_it_was(
        device: tuple[str, Path, Path], tmp_path: Path) -> None:
    ns, state, key = device
    # the device's own configuration, which irm must never touch: a list bound out on the LAN side
    shell(ns, key, "configure terminal", "ip access-list extended OPS-MGMT", "permit tcp any any eq 22",
          "permit ip any any", "exit", f"interface {LAN}", "ip access-group OPS-MGMT out", "end")
    before = ssh(ns, key, "show running-config")

    rc, tasks, out = _play(ns, key, tmp_path, ISOLATE, "irm-policy-0123abcd99")
    assert rc == 0, out[-3000:]
    aces = irm_ios_render.render("gw", ISOLATE)
    name = irm_ios_render.acl_name("gw", aces)
    live = readback(ns, key)
    assert ios_readback.compare(live, name=name, aces=aces, interfaces=[WAN, LAN],
                                owned=lambda n: irm_ios_render.owned(n, "gw")) == []
    assert live.bindings[LAN] == {"in": name, "out": "OPS-MGMT"}
    assert "%No Rollback Confirmed Change pending" in ssh(ns, key, "show archive config rollback timer")
    assert f"jump acl_{name}" in nft(ns)
    assert tasks["Report the change confirmed"]["ansible_facts"]["irm_confirmed"] is True
    assert not tasks[CONFIRM].get("skipped") and not tasks[CONFIRM].get("failed")  # read back, then confirmed
    assert tasks[CONFIRM]["commands"] == ["configure confirm", "write memory"]
    reach = "Reach this host, and every host managed through it, with new connections from the SOC"
    assert not tasks[reach].get("skipped") and tasks[reach]["unanswered"] == []

    # the same policy again: nothing sent, nothing to confirm
    rc, tasks, out = _play(ns, key, tmp_path, ISOLATE, "irm-policy-0123abcd99")
    assert rc == 0 and _commands(tasks) == [], out[-3000:]
    assert tasks[CONFIRM].get("skipped")

    # a new policy: the new list whole, then the bindings, then irm's old list deleted
    rc, tasks, out = _play(ns, key, tmp_path, QUARANTINE, "irm-policy-89abcdef00")
    assert rc == 0, out[-3000:]
    new = irm_ios_render.acl_name("gw", irm_ios_render.render("gw", QUARANTINE))
    sent = _commands(tasks)
    assert sent.index(f"ip access-list extended {new}") < sent.index(f"ip access-group {new} in") \
        < sent.index(f"no ip access-list extended {name}"), sent
    assert not any(c.startswith("no ip access-group") for c in sent), sent  # rebinding replaces, no gap
    assert "OPS-MGMT" not in " ".join(sent)
    live = readback(ns, key)
    assert set(live.acls) == {new, "OPS-MGMT"} and live.bindings[LAN] == {"in": new, "out": "OPS-MGMT"}

    # someone else's change is pending on the device: irm arms nothing over it and never confirms it
    shell(ns, key, "configure terminal revert timer 5", "ip access-list extended FOREIGN", "permit ip any any", "end")
    assert "No Rollback Confirmed Change pending" not in ssh(ns, key, "show archive config rollback timer")
    rc, tasks, out = _play(ns, key, tmp_path, ISOLATE, "irm-policy-0123abcd99")
    assert rc != 0 and _commands(tasks) == [], out[-3000:]
    refused = tasks[APPLY]
    assert refused.get("failed") and "a configuration change is already pending on the device" in refused["msg"]
    assert "No Rollback Confirmed Change pending" not in ssh(ns, key, "show archive config rollback timer")
    shell(ns, key, "configure revert now")  # its owner takes it back
    assert "FOREIGN" not in ssh(ns, key, "show running-config")

    # recovery's last step: no filtering at all, and the running-config as it was before the incident
    rc, tasks, out = _play(ns, key, tmp_path, OPEN, "absent")
    assert rc == 0, out[-3000:]
    assert ssh(ns, key, "show running-config") == before
    assert "jump acl_IRM" not in nft(ns)
    assert load_config(state / "config.json").acls.keys() == {"OPS-MGMT"}


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_a_device_that_does_not_hold_the_plan_before_the_confirm_is_never_confirmed(
        device: tuple[str, Path, Path], tmp_path: Path) -> None:
    """The read-back gates the confirm: the device loses one entry of irm's list between the write and
    the confirm (the effect of a concurrent edit, injected in the emulator). irm does not confirm; the
    revert timer, still pending, restores the device as it was."""
    ns, state, key = device
    before = ssh(ns, key, "show running-config")
    (state / "lose-entries").write_text("198.18.48.0 0.0.0.255 any\n")  # "area isolated: leaving"
    rc, tasks, out = _play(ns, key, tmp_path, ISOLATE, "irm-policy-0123abcd99")
    assert rc != 0, out[-3000:]
    gate = tasks[CONFIRM]
    assert gate.get("failed") and "does not hold irm's plan: not confirmed" in gate["msg"], gate
    assert "configure confirm" not in gate.get("commands", [])
    name = irm_ios_render.acl_name("gw", irm_ios_render.render("gw", ISOLATE))
    assert name in ssh(ns, key, "show running-config")  # written, minus the lost entry, and pending
    assert "No Rollback Confirmed Change pending" not in ssh(ns, key, "show archive config rollback timer")
    wait_for(lambda: ssh(ns, key, "show running-config") == before, 3 * IOS_MINUTE,
             "the device's revert timer to restore the configuration irm found")
    assert "jump acl_IRM" not in nft(ns)


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_compare_and_swap_refuses_an_access_list_the_journal_never_planned(
        device: tuple[str, Path, Path], tmp_path: Path) -> None:
    """An apply names the policies whose rendering the device may hold; a device holding irm's list for any
    other policy (another journal's, another SOC machine's) is refused, nothing sent."""
    ns, _, key = device
    rc, _, out = _play(ns, key, tmp_path, ISOLATE, "irm-policy-0123abcd99", firewall_policy_expect_policies=[OPEN])
    assert rc == 0, out[-3000:]  # nothing of irm's on the device: the empty policy's rendering
    holding = ssh(ns, key, "show running-config")
    rc, tasks, out = _play(ns, key, tmp_path, QUARANTINE, "irm-policy-89abcdef00",
                           firewall_policy_expect_policies=[OPEN, QUARANTINE])
    assert rc != 0 and _commands(tasks) == [], out[-3000:]
    refused = tasks[APPLY]
    assert refused.get("failed") and "compare-and-swap refused" in refused["msg"], refused
    assert ssh(ns, key, "show running-config") == holding
    rc, tasks, out = _play(ns, key, tmp_path, QUARANTINE, "irm-policy-89abcdef00",
                           firewall_policy_expect_policies=[OPEN, ISOLATE])
    assert rc == 0 and _commands(tasks), out[-3000:]
