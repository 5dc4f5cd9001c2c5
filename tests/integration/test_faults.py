"""Real faults during containment, injected for real: a host whose links are down, slow links that
outlast a dead-man timer, a boundary that reboots, two operators at once. Each test asserts on the live
rulesets, on traffic and, where a worm can spread, on the lab worm; never on the exit code alone."""

from __future__ import annotations

import json
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.lab.builder import tcp_open
from tests.conftest import BIN, ROOT, irm
from tests.integration.lab_tools import infected, jsonl, live_fingerprint, matrix, probe, wait_for
from tests.integration.test_containment_safety import incident

pytestmark = pytest.mark.lab

AREA_X = ["x-lt1", "x-lt2", "x-ws11", "x-ws12", "x-ws13", "x-ws21", "x-ws22"]


def irm_table(inv: Inventory, host: str) -> str:
    """`nft -s list table inet irm` read from the host's namespace ('' when there is none; -s: counters
    without the traffic they saw, so two end states compare by their rules)."""
    assert inv.lab is not None
    proc = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host}", "nft", "-s", "list", "table", "inet",
                           "irm"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def veth(inv: Inventory, host: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(namespace, device) of both ends of the host's link: its own end, and the gateway's bridge port."""
    assert inv.lab is not None
    ns = f"{inv.lab.name}-{host}"
    out = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ": lo:" not in ln)
    name, peer_index = line.split(":")[1].strip().split("@if")
    gw = f"{inv.lab.name}-{inv.areas[inv.hosts[host].area or ''].gateway}"
    gw_links = subprocess.run(["ip", "-n", gw, "-o", "link", "show"], capture_output=True, text=True,
                              check=True).stdout
    peer = next(ln.split(":")[1].strip().split("@")[0] for ln in gw_links.splitlines()
                if ln.split(":")[0].strip() == peer_index)
    return (ns, name), (gw, peer)


def set_links(inv: Inventory, host: str, state: str) -> None:
    """The cable pulled (or plugged back) at the switch: the gateway's end of the host's link goes down,
    so the host keeps its own addresses and routes, as a powered-off laptop would."""
    _, (gw, peer) = veth(inv, host)
    subprocess.run(["ip", "-n", gw, "link", "set", peer, state], check=True)


def journaled_fingerprints(journal: Path) -> dict[str, str]:
    with closing(Journal.reader(journal)) as j:
        return {h: str(r["fingerprint"]) for h, r in j.hosts.rows(1).items() if r["fingerprint"] is not None}


def contain(journal: Path, *extra: str, area: str = "subsidiary-x", inventory: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    inv_args = ["-i", str(inventory)] if inventory else []
    return irm("contain", "--area", area, "--yes", "--journal", str(journal), *inv_args, *extra, timeout=timeout)


def test_an_offline_laptop_never_holds_the_boundaries_back(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    set_links(inv, "x-lt1", "down")  # powered off: no link at all
    proc = contain(journal, "--no-loop", "--confirm-timeout", "10")
    # the documented exit code: contained, some hosts not reached; the host is named
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "not reached, protected by the boundary only: x-lt1" in proc.stderr
    # the boundaries are cut, read back from the boundaries and proven by traffic
    assert "area subsidiary-x cut from the Internet" in irm_table(inv, "edge-fw")
    assert irm_table(inv, "gw-x")
    assert irm_table(inv, "x-lt1") == ""  # never reached
    assert all(irm_table(inv, h) for h in AREA_X if h != "x-lt1")
    cut = matrix(inv, [probe(inv, "hq-ws1", "x-ws11", 4445), probe(inv, "hq-ws1", "x-lt2", 4445),
                       probe(inv, "x-ws11", "inet-web", 80), probe(inv, "x-ws21", "hq-erp", 4445)])
    assert set(cut.values()) == {"timeout"}, cut
    # the worm, seeded inside the area after containment, reaches no one
    irm("lab", "infect", "x-ws11", check=True)
    worm_log = Path(inv.hosts["x-ws11"].state_dir) / "worm.log"
    wait_for(lambda: sum(e.get("event") == "attempt" for e in jsonl(worm_log)) >= 8, 30,
             "the seeded worm's attempts")
    assert set(infected(inv)) == {"x-ws11"}
    # journaled and shown: when, which stage; status names it per area
    status = json.loads(irm("status", "--json", "--journal", str(journal), check=True).stdout)
    area = status["areas"]["subsidiary-x"]
    assert list(area["unreachable_hosts"]) == ["x-lt1"] and area["unreachable_hosts"]["x-lt1"]["stage"] == "isolate"
    assert area["posture"] == "isolated"
    # once the laptop is back, a re-run gives it the area's host policy and exits 0
    set_links(inv, "x-lt1", "up")
    wait_for(lambda: tcp_open(str(inv.hosts["x-lt1"].address), 22), 10, "x-lt1 to answer again")
    proc = contain(journal, "--no-loop", "--confirm-timeout", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tcp dport 4445 counter drop" in irm_table(inv, "x-lt1")
    status = json.loads(irm("status", "--json", "--journal", str(journal), check=True).stdout)
    assert status["areas"]["subsidiary-x"]["unreachable_hosts"] == {}
    assert irm("status", "--verify", "--journal", str(journal)).returncode == 0


def test_recovery_waits_for_an_unreachable_host_to_be_verified_or_excluded(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    set_links(inv, "x-lt1", "down")
    assert contain(journal, "--no-loop", "--confirm-timeout", "10").returncode == 6
    proc = irm("recover", "--area", "subsidiary-x", "--yes", "--journal", str(journal))
    assert proc.returncode == 2 and "x-lt1 (never remediated)" in proc.stderr
    proc = irm("exclude", "x-lt1", "--reason", "laptop lost on a train", "--journal", str(journal))
    assert proc.returncode == 0, proc.stderr
    status = json.loads(irm("status", "--json", "--journal", str(journal), check=True).stdout)
    assert status["areas"]["subsidiary-x"]["excluded_hosts"]["x-lt1"]["reason"] == "laptop lost on a train"
    proc = irm("recover", "--area", "subsidiary-x", "--yes", "--journal", str(journal))
    assert proc.returncode == 2  # the other hosts were never remediated: still refused, for them only
    (unmet,) = [ln for ln in proc.stderr.splitlines() if "not remediated and verified:" in ln]
    assert "x-ws11 (never remediated)" in unmet and "x-lt1" not in unmet


def _slow(inv: Inventory, host: str, rate: str) -> None:
    """tbf on both ends of the host's veth (this kernel has no netem)."""
    for where, dev in veth(inv, host):
        subprocess.run(["ip", "netns", "exec", where, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                        "burst", "1600", "latency", "400ms"], check=True)


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_a_timer_that_fires_before_the_confirm_is_never_reported_as_blocked(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    slow = ["x-ws12", "x-ws13", "x-ws21", "x-ws22", "x-lt1"]
    for host in slow:
        _slow(inv, host, "160kbit")
    proc = contain(journal, "--no-loop", "--confirm-timeout", "6")
    # a host left unconfirmed is journaled as what its timer restores: wait for every timer to be
    # confirmed or to fire
    wait_for(lambda: not any((Path(inv.hosts[h].state_dir) / "firewall" / "deadman.pid").exists()
                             for h in AREA_X), 30, "every dead-man timer confirmed or fired")
    # whatever the outcome, the journal and the exit code say exactly what is live on every host
    live = {h: live_fingerprint(inv, h) for h in AREA_X}
    recorded = journaled_fingerprints(journal)
    for host in AREA_X:
        assert recorded[host] == live[host], (host, proc.stdout, proc.stderr)
    blocked = {h for h, fp in live.items() if fp != "absent"}
    if blocked == set(AREA_X):
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:  # a host whose timer fired is named, and the run fails
        assert proc.returncode == 4
        for host in set(AREA_X) - blocked:
            assert f"{host}: host-level rules NOT in place" in proc.stderr
    assert "x-ws11" in blocked and "x-lt2" in blocked  # the fast hosts were confirmed right after their check
    # what status says equals what is live
    verify = irm("status", "--verify", "--journal", str(journal))
    assert verify.returncode == (0 if blocked == set(AREA_X) else 1), verify.stdout
    # and the boundaries were not held back by the slow hosts: the mobile segment is blocked at gw-x
    assert "mobile segment subsidiary-x/vpn blocked" in irm_table(inv, "gw-x")


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_a_rebooted_gateway_keeps_its_cut_and_a_lost_configuration_is_found_and_repaired(
        fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    assert contain(journal, "--no-loop", "--confirm-timeout", "10").returncode == 0
    isolated = [probe(inv, "hq-ws1", "x-ws11", 22), probe(inv, "hq-ws1", "x-ws21", 22)]
    assert set(matrix(inv, isolated).values()) == {"timeout"}
    table = irm_table(inv, "gw-x")
    # a plain reboot: the confirmed table is loaded at boot
    irm("lab", "reboot", "gw-x", check=True)
    assert irm_table(inv, "gw-x") == table
    assert set(matrix(inv, isolated).values()) == {"timeout"}
    assert irm("status", "--verify", "--journal", str(journal)).returncode == 0
    # a reboot that lost the saved configuration: the area is open again, and verify says so
    irm("lab", "reboot", "gw-x", "--lose-config", check=True)
    assert irm_table(inv, "gw-x") == ""
    assert set(matrix(inv, isolated).values()) == {"open"}
    verify = irm("status", "--verify", "--journal", str(journal))
    assert verify.returncode == 1
    assert "DRIFT gw-x: live absent, the journal says irm-nft-" in verify.stdout
    assert [ln for ln in verify.stdout.splitlines() if ln.startswith("DRIFT")] == [
        ln for ln in verify.stdout.splitlines() if ln.startswith("DRIFT gw-x")]
    # re-running contain repairs it: traffic is cut again and verify is clean
    proc = contain(journal, "--no-loop", "--confirm-timeout", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert irm_table(inv, "gw-x") == table
    assert set(matrix(inv, isolated).values()) == {"timeout"}
    assert irm("status", "--verify", "--journal", str(journal)).returncode == 0


@pytest.mark.parametrize("tamper", ["flush", pytest.param("delete the isolation rules", marks=pytest.mark.campaign)])
def test_a_tampered_gateway_chain_is_drift_and_contain_repairs_it(fresh_lab: Path, tmp_path: Path,
                                                                  tamper: str) -> None:
    """The table's comment still names the plan after `nft flush chain` or one deleted rule; the live
    rules do not. Traffic proves the path reopened, verify names gw-x and what differs, contain re-applies."""
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    assert contain(journal, "--no-loop", "--confirm-timeout", "10").returncode == 0
    isolated = [probe(inv, "x-ws11", "hq-ws1", 22), probe(inv, "hq-ws1", "x-ws21", 22)]
    assert set(matrix(inv, isolated).values()) == {"timeout"}
    assert inv.lab is not None
    ns = f"{inv.lab.name}-gw-x"
    if tamper == "flush":
        subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", "irm", "forward"], check=True)
    else:  # the rules that drop what leaves and enters the isolated area, the rest kept
        listed = json.loads(subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", "irm",
                                            "forward"], capture_output=True, text=True, check=True).stdout)
        handles = [r["rule"]["handle"] for r in listed["nftables"]
                   if "rule" in r and r["rule"].get("comment", "").startswith("area subsidiary-x isolated")]
        assert handles, listed
        for handle in handles:
            subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "rule", "inet", "irm", "forward", "handle",
                            str(handle)], check=True)
    assert "comment \"irm-nft-" in irm_table(inv, "gw-x")  # irm's own marker is untouched
    assert "open" in matrix(inv, isolated).values()  # and a path out of the area is open again
    verify = irm("status", "--verify", "--journal", str(journal))
    assert verify.returncode == 1, verify.stdout
    assert "DRIFT gw-x: live irm-nft-" in verify.stdout
    assert "gw-x: chain forward: rule " in verify.stdout and "missing" in verify.stdout
    proc = contain(journal, "--no-loop", "--confirm-timeout", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(matrix(inv, isolated).values()) == {"timeout"}
    assert irm("status", "--verify", "--journal", str(journal)).returncode == 0


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_two_operators_containing_two_areas_at_once_both_cuts_stay(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    procs = [subprocess.Popen([str(BIN / "irm"), "contain", "--area", area, "--yes", "--no-loop", "--journal",
                               str(journal), "--confirm-timeout", "10", "--operator", who],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for area, who in (("subsidiary-x", "alice"), ("hq", "bob"))]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    edge = irm_table(inv, "edge-fw")
    assert "area subsidiary-x cut from the Internet" in edge and "area hq cut from the Internet" in edge
    cut = matrix(inv, [probe(inv, "x-ws11", "inet-web", 80), probe(inv, "hq-erp", "inet-web", 80),
                       probe(inv, "hq-ws1", "x-ws11", 22)])
    assert set(cut.values()) == {"timeout"}, cut
    assert irm("status", "--verify", "--journal", str(journal)).returncode == 0
    with closing(Journal.reader(journal)) as j:
        assert j.locks.held() == []
