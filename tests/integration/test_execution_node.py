"""A play run on an execution node through ansible-runner's streaming interface (transmit | ssh NODE
worker | process): the results come back exactly as from a local run, the SSH connections to the
targets come from the node, nothing is left in the node's job directory, and a node that cannot be
reached, or dies mid-run, fails the run cleanly with the events received so far.

The node here is a lab host (hq-ws1) with sshd; lab namespaces share the machine's filesystem, so irm's
runtime (the venv, the playbooks, the collection) is at the same paths there, as `irm node install`
is to make it on a real node."""

from __future__ import annotations

import glob
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator.core import runner, stream
from orchestrator.core.errors import RunnerError
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import irm

pytestmark = pytest.mark.lab

NODE = "hq-ws1"


def _node(lab: Path) -> runner.ExecutionNode:
    inv = load_inventory(lab)
    assert inv.lab is not None
    ssh = Path(inv.lab.state_dir) / "ssh"
    return runner.ExecutionNode(
        name=NODE, address=str(inv.hosts[NODE].address), user="root",
        ssh_options=("-i", str(ssh / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}",
                     "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"),
        runner=str(Path(sys.executable).parent / "ansible-runner"))


ORIGIN = """- hosts: x-ws11,x-ws12
  gather_facts: false
  tasks:
    - name: Where the SSH connection comes from
      ansible.builtin.command: printenv SSH_CONNECTION
      register: conn
      changed_when: false
    - name: Hand it to irm
      ansible.builtin.set_fact:
        irm_origin: "{{ conn.stdout.split()[0] }}"
"""


def test_a_play_on_the_node_returns_what_a_local_run_returns(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    targets = {"irm_targets": "x-ws11,x-ws12,gw-y"}
    local = runner.run_playbook("reach", lab, extravars=targets)
    remote = runner.run_playbook("reach", lab, extravars=targets, node=_node(lab))
    assert remote.status == "successful" and remote.succeeded
    assert {h: (r.status, r.ok) for h, r in remote.hosts.items()} == \
        {h: (r.status, r.ok) for h, r in local.hosts.items()}
    # the targets see the node's address, though the controller's own connections to them are still open
    play = tmp_path / "origin.yml"
    play.write_text(ORIGIN)
    here = runner.run_playbook(str(play), lab)
    there = runner.run_playbook(str(play), lab, node=_node(lab))
    assert {h: r.facts["irm_origin"] for h, r in here.hosts.items()} == dict.fromkeys(
        ("x-ws11", "x-ws12"), str(inv.hosts["soc-console"].address))
    assert {h: r.facts["irm_origin"] for h, r in there.hosts.items()} == dict.fromkeys(
        ("x-ws11", "x-ws12"), str(inv.hosts[NODE].address))
    assert glob.glob("/tmp/irm-job-*") == []  # the worker removed its job directory


def test_an_unreachable_node_fails_the_run_by_name(lab: Path) -> None:
    node = _node(lab)
    dead = runner.ExecutionNode(**{**node.__dict__, "address": "198.18.17.99", "connect_timeout": 2})
    with pytest.raises(RunnerError, match=f"could not run.*{NODE}"):
        runner.run_playbook("reach", lab, extravars={"irm_targets": "x-ws11"}, node=dead)


def test_a_node_that_dies_mid_run_ends_the_run_with_the_events_so_far(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    assert inv.lab is not None
    play = tmp_path / "slow.yml"
    play.write_text("- hosts: x-ws11\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.ping:\n    - ansible.builtin.command: sleep 60\n")
    seen = threading.Event()

    def watch(event: stream.Event) -> None:
        if isinstance(event, stream.HostReported):
            seen.set()

    def kill_node() -> None:
        seen.wait(60)
        pids = subprocess.run(["ip", "netns", "pids", f"{inv.lab.name}-{NODE}"],  # type: ignore[union-attr]
                              capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["kill", "-9", *pids], check=False)

    killer = threading.Thread(target=kill_node)
    killer.start()
    result = runner.run_playbook(str(play), lab, node=_node(lab), events=stream.EventStream([watch]))
    killer.join()
    assert result.status == "error" and not result.succeeded
    assert result.hosts["x-ws11"].ok == 1  # the ping's event arrived before the node died
    # a node killed mid-job cannot remove its job directory, nor be reached to have it removed: it stays
    # there, holding the job's extra vars; once the node is back, its check names it and --clean removes it
    from orchestrator.core import nodes

    irm("lab", "reboot", NODE, "-i", str(lab), check=True)
    left = glob.glob("/tmp/irm-job-*")
    assert len(left) == 1 and (Path(left[0]) / "env" / "extravars").exists()
    (problem,) = nodes.check(_node(lab))
    assert f"1 job directory left by runs that died there ({left[0]})" in problem
    assert nodes.clean_jobs(_node(lab)) == left and glob.glob("/tmp/irm-job-*") == []
    assert nodes.check(_node(lab)) == []


def test_node_check_compares_versions_and_files_and_names_what_it_cannot_reach(lab: Path) -> None:
    """On the lab node the check passes (the lab shares the machine's files: the same files at the same
    paths, which is what `irm node install` copies to a real node, so this proves the comparison runs,
    not a copy); `install` sees the shared filesystem and copies nothing; a missing runtime and an
    unreachable node are named."""
    from orchestrator.core import nodes

    node = _node(lab)
    assert nodes.check(node) == []
    assert nodes.shares_filesystem(node)
    assert "shares this machine's filesystem" in nodes.install(node)
    absent = runner.ExecutionNode(**{**node.__dict__, "runner": "/opt/irm-missing/bin/ansible-runner"})
    (problem,) = nodes.check(absent)
    assert problem.startswith(f"{NODE}: '/opt/irm-missing/bin/python' failed over SSH")
    gone = runner.ExecutionNode(**{**node.__dict__, "address": "198.18.17.99", "connect_timeout": 2})
    (problem,) = nodes.check(gone)
    assert NODE in problem and "failed over SSH (255)" in problem
