"""The dead-man timer and a confirm never interleave: the timer's revert takes the host's irm_nft lock,
the one apply and confirm hold from reading the timer to writing, so it waits while a confirm holds it
and lands whole before a confirm reads anything; a confirm reads the live table again after stopping
the timer. The host code runs for real in a namespace of this test's own, with real nft and a real
timer process; the timer runs nft by absolute path. And the boot unit's ordering."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COLLECTION, module_util

pytestmark = pytest.mark.lab

host = module_util("irm_nft_host")
render = module_util("irm_nft_render")
POLICY = {"label": "block 4445", "input": {"default": "accept", "rules": [
    {"action": "drop", "protocol": "tcp", "dports": [4445], "comment": "vector tcp/4445 inbound"}]}}
FINGERPRINT = host.policy_fingerprint(POLICY)
RULESET = render.render("probe", POLICY, table="irm", fingerprint=FINGERPRINT)


@pytest.fixture()
def ns(scratch_ns: str) -> str:
    return scratch_ns


def call(ns: str, params: dict[str, Any]) -> dict[str, Any]:
    """One irm_nft call run by the host code in the namespace, as the action plugin runs it."""
    source = (COLLECTION / "plugins" / "module_utils" / "irm_nft_host.py").read_text()
    request = json.dumps({"params": params, "check_mode": False})
    code = f"{source}\nstdin_main(json.loads({json.dumps(request)}))\n"
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-I", "-c",
                           "import sys; exec(compile(sys.stdin.read(), 'irm_nft_host', 'exec'))"],
                          input=code, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def live(ns: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "irm"],
                          capture_output=True, text=True)
    return "absent" if proc.returncode else str(host.fingerprint(host.canonical_live(json.loads(proc.stdout))))


def test_the_timer_waits_for_the_lock_a_confirm_holds_then_reverts(ns: str, tmp_path: Path) -> None:
    state = tmp_path / "firewall"
    applied = call(ns, {"ruleset": RULESET, "fingerprint": FINGERPRINT, "token": "run-a", "state_dir": str(state),
                        "confirm_timeout": 2})
    assert applied["deadman"] == "armed" and live(ns) == FINGERPRINT, applied
    pid, _, token = (state / "deadman.pid").read_text().split()
    assert token == "run-a" and Path(f"/proc/{pid}").exists()
    lock = os.open(state / "irm_nft.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # what a confirm holds from reading the timer to writing
    try:
        time.sleep(4)  # the timer woke at 2 s: it waits for the lock, the table is untouched
        assert live(ns) == FINGERPRINT
        assert (state / "deadman.pid").exists()
    finally:
        os.close(lock)
    for _ in range(100):  # released: the revert lands (no previous table: none at all)
        if live(ns) == "absent" and not (state / "deadman.pid").exists():
            break
        time.sleep(0.1)
    assert live(ns) == "absent"
    assert (state / "deadman.state").read_text().startswith("reverted ")
    refused = call(ns, {"state": "confirmed", "fingerprint": FINGERPRINT, "token": "run-a", "state_dir": str(state)})
    assert refused["failed"] and "no dead-man timer armed for run-a any more (reverted " in refused["msg"]


def test_a_confirm_stops_its_own_timer_and_reads_the_table_again(ns: str, tmp_path: Path) -> None:
    state = tmp_path / "firewall"
    call(ns, {"ruleset": RULESET, "fingerprint": FINGERPRINT, "token": "run-b", "state_dir": str(state),
              "confirm_timeout": 30})
    done = call(ns, {"state": "confirmed", "fingerprint": FINGERPRINT, "token": "run-b", "state_dir": str(state)})
    assert done.get("irm_confirmed") and done["irm_live_fingerprint"] == FINGERPRINT, done
    assert not (state / "deadman.pid").exists() and live(ns) == FINGERPRINT
    # the confirmed table is what the next timer would restore
    assert host._fingerprint_of((state / "confirmed.nft").read_text()) == FINGERPRINT


def test_the_timer_runs_nft_by_absolute_path(ns: str, tmp_path: Path) -> None:
    """A PATH that finds no nft (or another one) changes nothing: the timer runs the nft found at arm time."""
    argv = host._timer_command(str(tmp_path), str(tmp_path / "revert.nft"), 5, "run-c", "/usr/sbin/nft")
    assert argv[0] == sys.executable and argv[-1] == "/usr/sbin/nft"
    assert argv[2] == "-c" and "fcntl.flock(lock, fcntl.LOCK_EX)" in argv[3]


def test_the_boot_unit_loads_after_nftables_and_the_state_mount() -> None:
    text = host.boot_unit_text("/usr/sbin/nft", "/var/lib/irm/firewall/confirmed.nft")
    lines = text.splitlines()
    assert "After=nftables.service" in lines and "Before=network-pre.target" in lines
    assert "RequiresMountsFor=/var/lib/irm/firewall" in lines
    assert "ExecStart=/usr/sbin/nft -f /var/lib/irm/firewall/confirmed.nft" in lines


def test_compare_and_swap_replaces_only_the_table_it_expects(ns: str, tmp_path: Path) -> None:
    """An apply names the tables it may replace; a live table that is none of them, and not drift from the
    last one confirmed here, is refused with nothing changed."""
    state = tmp_path / "firewall"
    other_policy = {"label": "another journal", "input": {"rules": [
        {"action": "drop", "protocol": "tcp", "dports": [1139], "comment": "vector tcp/1139 inbound"}]}}
    other = host.policy_fingerprint(other_policy)
    other_rules = render.render("probe", other_policy, table="irm", fingerprint=other)

    def apply(ruleset: str, fingerprint: str, expect: list[str]) -> dict[str, Any]:
        return call(ns, {"ruleset": ruleset, "fingerprint": fingerprint, "token": "run-d", "state_dir": str(state),
                         "deadman": False, "expect": expect})

    assert apply(RULESET, FINGERPRINT, ["absent"])["changed"]  # first contact: no table, as expected
    refused = apply(other_rules, other, ["absent"])  # a second journal that never wrote here
    assert refused["failed"] and refused["msg"] == (
        f"compare-and-swap refused: the live table is {FINGERPRINT} (last confirmed here: {FINGERPRINT}), not one "
        "this run expects to replace (absent): another journal or SOC machine changed this host; nothing applied")
    assert live(ns) == FINGERPRINT
    assert apply(other_rules, other, [FINGERPRINT])["changed"] and live(ns) == other  # the journal that knows
    # drift from the last confirmed table (a flushed chain) is repaired by the journal that confirmed it
    subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", "irm", "input"], check=True)
    assert live(ns) not in (other, FINGERPRINT)
    assert apply(other_rules, other, [other])["changed"] and live(ns) == other
    # and an expectation that is neither what is live nor what was confirmed is refused
    assert apply(RULESET, FINGERPRINT, [FINGERPRINT])["failed"] and live(ns) == other
