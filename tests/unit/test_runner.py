"""The runner adapter: extra vars of any size travel in a 0600 file; a playbook that cannot start is a
clean RunnerError. Runs a real local playbook (no lab, no network)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import runner
from orchestrator.core.errors import RunnerError

PLAYBOOK = """\
- name: Echo the size of what irm passed
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Count
      ansible.builtin.set_fact:
        irm_size: "{{ irm_payload | length }}"
        irm_marker: "{{ irm_marker_in }}"
"""


def test_extra_vars_far_above_the_argument_limit_arrive_whole(tmp_path: Path) -> None:
    pb = tmp_path / "size.yml"
    pb.write_text(PLAYBOOK)
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    payload = "x" * 600_000  # one argument is capped at 128 KiB
    result = runner.run_playbook(pb, inv, extravars={"irm_payload": payload, "irm_marker_in": "ok"})
    assert result.succeeded, result
    assert result.hosts["localhost"].facts == {"irm_size": 600000, "irm_marker": "ok"}


def test_the_extra_vars_file_is_private(tmp_path: Path) -> None:
    runner._write_extravars(tmp_path, {"irm_policies": {"h": {}}})
    path = tmp_path / "env" / "extravars"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "env").stat().st_mode) == 0o700
    assert path.read_text() == '{irm_policies: {h: {}}}\n'


def test_a_playbook_that_cannot_start_is_a_runner_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    def broken(**_: Any) -> None:
        raise OSError(7, "Argument list too long")

    monkeypatch.setattr(ansible_runner, "run", broken)
    pb = tmp_path / "size.yml"
    pb.write_text(PLAYBOOK)
    with pytest.raises(RunnerError, match=r"size.yml could not start: \[Errno 7\] Argument list too long"):
        runner.run_playbook(pb, tmp_path, extravars={})


def test_template_syntax_in_extra_vars_is_data_never_evaluated(tmp_path: Path) -> None:
    """A plan value from an outside CERT (or any string irm passes) must not run code on the controller."""
    canary = tmp_path / "pwned"
    hostile = "{{ lookup('pipe', 'touch " + str(canary) + "') }}"
    pb = tmp_path / "echo.yml"
    pb.write_text(PLAYBOOK.replace("irm_payload | length", "irm_payload"))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    weird = 'x"\n\t\\ {% raw %} [/] ünï ${HOME} $(id) `id` ; rm -rf /'
    # strings that plain YAML would read as numbers, booleans or null stay strings (an SSH port "22",
    # a version "1.1"), beside a real number
    typed = ["22", "1.1", "true", "~", "null", "0x1F", 3]
    result = runner.run_playbook(pb, inv, extravars={"irm_payload": {"name": hostile, "list": [hostile, *typed]},
                                                     "irm_marker_in": weird})
    assert result.succeeded, result
    assert not canary.exists()
    facts = result.hosts["localhost"].facts
    assert facts["irm_size"] == {"name": hostile, "list": [hostile, *typed]}
    assert facts["irm_marker"] == weird


def test_a_network_resource_modules_commands_in_check_mode_are_shown_as_its_diff() -> None:
    from orchestrator.core.runner import Collector

    event = {"event": "runner_on_ok", "event_data": {"host": "gw-y", "task": "Write irm's new access list", "res": {
        "changed": True, "commands": ["ip access-list extended IRM-GW-Y-0123ABCD", "10 deny ip any any"]}}}
    checking, applying = Collector(None, check=True), Collector(None)
    checking(event)
    applying(event)
    assert checking.hosts["gw-y"].diffs == [{"before": "", "after": "ip access-list extended IRM-GW-Y-0123ABCD\n"
                                             "10 deny ip any any\n", "before_header": "device",
                                             "after_header": "Write irm's new access list"}]
    assert applying.hosts["gw-y"].diffs == []  # applied for real: no diff


def test_a_play_is_split_between_the_controller_and_the_execution_node() -> None:
    """Each host's part of a play runs where it is managed; a node's part holds only its own hosts' data,
    and the endpoints it reaches itself lose their 'through'; the results come back as one."""
    from orchestrator.core import checks, routing
    from orchestrator.core.inventory.load import load_inventory
    from tests.conftest import LAB_INVENTORY
    from tests.fakes.runner import FakeRunner

    inv = load_inventory(LAB_INVENTORY)
    fake = FakeRunner()
    hosts = ["x-ws11", "z-ws11", "gw-z", "z-node", "z-ws21"]
    reach = {h: checks.reach_targets(inv, [h]) for h in hosts}
    result = routing.route(inv, fake)("contain_3_vectors", LAB_INVENTORY, extravars={
        "irm_targets": ",".join(hosts), "irm_policies": {h: {} for h in hosts}, "irm_reach": reach,
        "irm_token": "t"})
    parts = {c.node: c for c in fake.calls}
    assert sorted(parts[None].targets) == ["gw-z", "x-ws11", "z-node"]
    assert sorted(parts["z-node"].targets) == ["z-ws11", "z-ws21"]
    assert sorted(parts["z-node"].extravars["irm_policies"]) == ["z-ws11", "z-ws21"]
    assert parts["z-node"].extravars["irm_token"] == "t"
    assert all("through" not in e for es in parts["z-node"].extravars["irm_reach"].values() for e in es)
    assert any("through" in e for e in parts[None].extravars["irm_reach"]["gw-z"])  # z-ws21, from the SOC
    assert sorted(result.hosts) == sorted(hosts) and result.succeeded
