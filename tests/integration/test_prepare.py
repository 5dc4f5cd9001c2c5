"""`irm prepare` against the real lab: every check passes on a lab that is ready, and each fault an
outbreak brings (a host down, a boundary holding a table nobody confirmed, an address the inventory does
not know, a silent sensor, a stale directory, a dead mail relay, a changed file of irm) fails its own
check, by name, with exit code 1. Nothing prepare does changes a ruleset."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import LAB_INVENTORY, irm
from tests.integration.lab_tools import matrix, probe, rulesets

pytestmark = pytest.mark.lab


def _prepare(tmp_path: Path, *extra: str) -> tuple[int, dict[str, dict[str, object]]]:
    proc = irm("prepare", "--json", "--checksums", str(tmp_path / "sums.json"), "--journal",
               str(tmp_path / "j.db"), *extra, timeout=300)
    data = json.loads(proc.stdout)
    assert data["ok"] == (proc.returncode == 0), proc.stderr
    return proc.returncode, {c["name"]: c for c in data["checks"]}


def test_a_ready_lab_passes_and_each_fault_fails_its_own_check(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(LAB_INVENTORY)
    assert inv.lab is not None
    state = Path(inv.lab.state_dir)
    before = rulesets(inv)
    # the drift check names inventory hosts their gateway never resolved: on a live network every host
    # talks through its gateway; here z-ws11 (managed from z-node, on its own segment) has not yet
    assert matrix(inv, [probe(inv, "z-ws11", "hq-erp", 8069)]) == {("z-ws11", "hq-erp", 8069): "open"}
    code, checks = _prepare(tmp_path, "--record", "--drift", "--plan", "plans/lab-worm.yml")
    assert code == 0, {n: c["detail"] for n, c in checks.items() if not c["ok"]}
    assert {"management", "round trip gw-x", "round trip gw-y", "round trip edge-fw", "drift subsidiary-x",
            "drift subsidiary-y", "crisis cell", "notification", "installation", "warm path"} <= set(checks)
    assert rulesets(inv) == before  # the round trips changed nothing
    # every Linux host's warm-path options resolved and kept: the next containment's first stage goes warm
    assert "resolved and kept" in str(checks["warm path"]["detail"]), checks["warm path"]

    # the faults, all at once: each is named by its own check
    ns = f"{inv.lab.name}-"
    # x-ws22 loses every process (its sshd and the sessions Ansible keeps open): no management connection
    inside = subprocess.run(["ip", "netns", "pids", f"{ns}x-ws22"], capture_output=True, text=True, check=True)
    subprocess.run(["kill", "-9", *inside.stdout.split()], check=True)
    subprocess.run(["ip", "netns", "exec", f"{ns}gw-hq", "nft", "add", "table", "inet", "irm"], check=True)
    # an address the inventory does not know, talking through gw-x and through the IOS gw-y
    for host, rogue in (("x-ws13", "198.18.32.99"), ("y-ws12", "198.18.48.99")):
        h = inv.hosts[host]
        dev = subprocess.run(["ip", "-n", f"{ns}{host}", "-j", "-4", "addr"], capture_output=True, text=True,
                             check=True)
        iface = next(i["ifname"] for i in json.loads(dev.stdout)
                     if any(a["local"] == str(h.address) for a in i["addr_info"]))
        subprocess.run(["ip", "-n", f"{ns}{host}", "addr", "add", f"{rogue}/24", "dev", iface], check=True)
        talk = ("import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); s.settimeout(2); "
                "s.connect_ex((sys.argv[2], 9))")  # a TCP SYN from the rogue address; the SOC answers RST
        subprocess.run(["ip", "netns", "exec", f"{ns}{host}", "python3", "-c", talk, rogue,
                        str(inv.hosts["soc-console"].address)], check=True)
    cell = yaml.safe_load((state / "crisis-cell.yml").read_text())
    cell["contacts"][1]["reviewed_at"] = (datetime.now(UTC) - timedelta(days=200)).date()
    (state / "crisis-cell.yml").write_text(yaml.safe_dump(cell))
    mailbox = int((state / "mailbox.pid").read_text())
    subprocess.run(["kill", str(mailbox)], check=True)
    sums = json.loads((tmp_path / "sums.json").read_text())
    changed = next(f for f in sums["files"] if f.endswith("irm_nft_host.py"))
    sums["files"][changed] = "0" * 64  # the file no longer has the hash recorded for it
    (tmp_path / "sums.json").write_text(json.dumps(sums))

    code, checks = _prepare(tmp_path, "--drift")
    assert code == 1
    failed = {n: str(c["detail"]) for n, c in checks.items() if not c["ok"]}
    assert "x-ws22" in failed["management"]
    # an empty irm table made by hand: a table irm never confirmed (its own fingerprint, read from nftables)
    assert "the live table is irm-nft-" in failed["round trip gw-hq"]
    assert "the confirmed one absent: no rehearsal" in failed["round trip gw-hq"]
    assert "198.18.32.99" in failed["drift subsidiary-x"] and "198.18.48.99" in failed["drift subsidiary-y"]
    assert "ciso Lab CISO was last reviewed 200 days ago" in failed["crisis cell"]
    assert "198.18.0.2:2525 does not answer" in failed["notification"]
    assert f"changed 1: {changed}" in failed["installation"]
    ok = {n for n, c in checks.items() if c["ok"]}
    assert {"round trip gw-x", "round trip gw-y", "round trip edge-fw", "round trip core-rtr", "journal"} <= ok
    subprocess.run(["ip", "netns", "exec", f"{ns}gw-hq", "nft", "delete", "table", "inet", "irm"], check=True)


def test_a_silent_sensor_fails_its_source_check(lab: Path) -> None:
    """The sensors write a stats record every 30 s; a source silent for longer than its max_silence (120 s
    in the lab) is dead. Read as if two minutes later, the lab's live sensor feed is silent."""
    from orchestrator.preparation.prepare import check_sources

    inv = load_inventory(LAB_INVENTORY)
    now = datetime.now(UTC)
    assert all(c.ok for c in check_sources(inv, now))
    late = {c.name: c for c in check_sources(inv, now + timedelta(seconds=200))}
    eve = next(c for n, c in late.items() if n.startswith("source suricata"))
    assert not eve.ok and "silent for" in eve.detail
