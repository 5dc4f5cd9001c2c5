"""irm_nft's two ways to run on a host give the same result on the same host: the action plugin's direct
run (the host's known Python reads the collection's host code on stdin) and the plain module (AnsiballZ),
taken when the interpreter is still to be discovered. What a bad policy or argument does: nothing on the
host, and a message naming it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import BIN, ROOT, module_util

pytestmark = pytest.mark.lab

HOST = "x-ws11"
nft_host = module_util("irm_nft_host")


def _apply(lab: Path, tmp_path: Path, task: dict[str, Any], *extra: str) -> dict[str, Any]:
    playbook = tmp_path / "nft.yml"
    args = {"token": "path-test", "state_dir": "{{ irm_host_state_dir }}/firewall", "confirm_timeout": 30,
            "boot_unit": False, "reach": [{"host": HOST, "address": "{{ ansible_host }}", "port": 22}], **task}
    playbook.write_text(yaml.safe_dump([{"name": "irm_nft", "hosts": HOST, "gather_facts": False,
                                         "tasks": [{"name": "nft", "irm.response.irm_nft": args}]}]))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab), str(playbook), *extra],
                          capture_output=True, text=True, env=env, check=False)
    result: dict[str, Any] = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][HOST]
    return result


def _live(lab: Path) -> str:
    inv = load_inventory(lab)
    assert inv.lab is not None
    proc = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{HOST}", "nft", "list", "table", "inet", "irm"],
                          capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def _policy(port: int) -> dict[str, Any]:
    return {"label": f"block {port}", "input": {"default": "accept", "rules": [
        {"action": "drop", "protocol": "tcp", "dports": [port], "comment": f"vector tcp/{port}"}]}}


def test_the_direct_run_and_the_module_apply_and_confirm_alike(lab: Path, tmp_path: Path) -> None:
    state = Path(load_inventory(lab).hosts[HOST].state_dir) / "firewall"

    planned = {port: nft_host.policy_fingerprint(_policy(port)) for port in (4445, 4446, 4447)}
    direct = _apply(lab, tmp_path, {"policy": _policy(4445)})  # the fingerprint derived from the policy
    assert "invocation" not in direct  # no AnsiballZ: the host's /usr/bin/python3 ran the host code
    assert direct["changed"] and direct["deadman"] == "confirmed" and direct["irm_confirmed"], direct
    assert direct["irm_live_fingerprint"] == planned[4445]
    assert re.search(r"tcp dport 4445 counter packets \d+ bytes \d+ drop", _live(lab))  # counted
    assert not (state / "deadman.pid").exists()
    assert (state / "confirmed.nft").read_text() == (state / "desired.nft").read_text()

    # the interpreter still to discover: the plain module runs, with the same outcome
    module = _apply(lab, tmp_path, {"policy": _policy(4446), "fingerprint": planned[4446]},
                    "-e", "ansible_python_interpreter=auto_silent")
    assert "invocation" in module
    assert module["changed"] and module["deadman"] == "confirmed" and module["irm_confirmed"], module
    assert module["irm_live_fingerprint"] == planned[4446]
    assert re.search(r"tcp dport 4446 counter packets \d+ bytes \d+ drop", _live(lab))
    assert set(direct) - {"diff"} == set(module) - {"diff", "invocation", "ansible_facts", "warnings",
                                                     "deprecations"}

    # the same again: nothing to do, either way
    again = _apply(lab, tmp_path, {"policy": _policy(4446)})
    assert not again["changed"] and again["live_fingerprint_matched"] and again["irm_confirmed"]

    # a bad policy or argument: refused on the controller by name, the host untouched
    bad_port = _apply(lab, tmp_path, {"policy": {"input": {"rules": [
        {"action": "drop", "protocol": "tcp", "dports": ["4445; flush ruleset"], "comment": "x"}]}}})
    assert bad_port["failed"] and bad_port["msg"] == (
        f"policy for {HOST} cannot be rendered: input.rules[0].dports: '4445; flush ruleset' is not a port "
        "(an integer in 0..65535)")
    bad_arg = _apply(lab, tmp_path, {"policy": _policy(4447), "confirm_timeout": "soon"})
    assert bad_arg["failed"] and bad_arg["msg"] == "argument 'confirm_timeout' is of type str and cannot be read as int"
    # a fingerprint that is not the policy's: refused before the host is reached
    wrong = _apply(lab, tmp_path, {"policy": _policy(4447), "fingerprint": planned[4445]})
    assert wrong["failed"] and wrong["msg"] == (f"the fingerprint given for {HOST} ({planned[4445]}) is not its "
                                                f"policy's ({planned[4447]}): nothing applied")
    assert re.search(r"tcp dport 4446 counter packets \d+ bytes \d+ drop", _live(lab))

    # back to no irm table at all
    gone = _apply(lab, tmp_path, {"policy": {"label": "none"}, "fingerprint": "absent", "absent": True})
    assert gone["changed"] and gone["irm_confirmed"] and gone["irm_live_fingerprint"] == "absent", gone
    assert _live(lab) == "" and not (state / "confirmed.nft").exists()


def test_the_rehearsal_arms_and_stops_a_timer_and_changes_nothing(lab: Path, tmp_path: Path) -> None:
    """irm prepare's round trip (state rehearsed): on a confirmed host, a timer is armed and stopped and the
    table is untouched; while another run's timer is armed, the rehearsal is refused and that timer kept."""
    state = Path(load_inventory(lab).hosts[HOST].state_dir) / "firewall"
    _apply(lab, tmp_path, {"policy": _policy(4446)})
    before = _live(lab)
    done = _apply(lab, tmp_path, {"state": "rehearsed", "reach": None})
    assert done.get("irm_rehearsed") and not done["changed"], done
    assert _live(lab) == before and not (state / "deadman.pid").exists()
    assert (state / "deadman.state").read_text().startswith("rehearsed ")
    # another run armed a change it has not confirmed yet
    armed = _apply(lab, tmp_path, {"policy": _policy(4447), "token": "other",
                                   "reach": None})
    assert armed["deadman"] == "armed", armed
    refused = _apply(lab, tmp_path, {"state": "rehearsed", "reach": None})
    assert refused.get("failed") and "(token other" in refused["msg"] and "no rehearsal now" in refused["msg"]
    assert (state / "deadman.pid").read_text().split()[2] == "other"  # that run's timer is left alone
    confirmed = _apply(lab, tmp_path, {"state": "confirmed", "token": "other",
                                       "fingerprint": nft_host.policy_fingerprint(_policy(4447)),
                                       "reach": None})
    assert confirmed["irm_confirmed"], confirmed
