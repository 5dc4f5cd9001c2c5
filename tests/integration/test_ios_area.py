"""subsidiary-y, the lab's area behind an emulated Cisco IOS router (gw-y), handled end to end by irm:
contained with access lists over network_cli, commit-confirmed and read back with netmiko; the lab worm
inside it never reaches another area and real traffic agrees; a tampered binding is named by
``irm status --verify`` and put back by the next ``irm contain``; recovery leaves the device's
running-config exactly as it was before the incident."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import (
    approve_args,
    infected,
    matrix,
    probe,
    set_patched,
    wait_for,
    worm_attempts,
)

pytestmark = pytest.mark.lab

AREA = "subsidiary-y"
INSIDE = ["y-ws11", "y-ws12", "y-ws21"]
OUTSIDE = [h.name for h in load_inventory(LAB_INVENTORY).hosts.values() if h.kind == "area" and h.area != AREA]


@dataclass
class Scenario:
    inv: Inventory
    journal: Path
    config_before: str
    contain_out: str
    open_at: datetime


def device(inv: Inventory, *commands: str) -> str:
    """gw-y's answer to commands typed at its console (OpenSSH, the lab's key, its host key checked)."""
    assert inv.lab is not None
    ssh_dir = Path(inv.lab.state_dir) / "ssh"
    script = "\n".join(["enable", "terminal length 0", *commands, "exit", ""])
    return subprocess.run(["ssh", "-tt", "-i", str(ssh_dir / "id_ed25519"), "-o", "BatchMode=yes",
                           "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
                           "-o", "LogLevel=ERROR", f"root@{inv.hosts['gw-y'].address}"],
                          input=script, capture_output=True, text=True, timeout=60, check=True).stdout


def running_config(inv: Inventory) -> str:
    out = device(inv, "show running-config")
    return out[out.index("Building configuration"):out.rindex("end") + 3]


def _irm(s: Scenario | Path, *args: str) -> subprocess.CompletedProcess[str]:
    journal = s if isinstance(s, Path) else s.journal
    return irm(*args, "--journal", str(journal), timeout=600, env={"IRM_OPERATOR": "op-ios"})


@pytest.fixture(scope="module")
def contained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    journal = tmp_path_factory.mktemp("ios") / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        before = running_config(inv)
        baseline = matrix(inv, [probe(inv, "y-ws11", "inet-web", 80), probe(inv, "y-ws21", "x-ws11", 4445)])
        assert set(baseline.values()) == {"open"}, baseline
        set_patched(inv, OUTSIDE, True)  # the worm stays in subsidiary-y until it is contained
        _irm(journal, "incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445")
        irm("lab", "infect", "y-ws11", check=True)
        wait_for(lambda: len(infected(inv)) >= 2, 30, "the worm to spread inside subsidiary-y")
        out = _irm(journal, "contain", "--area", AREA, "--yes", "--quiet-window", "4", "--confirm-timeout", "30")
        assert out.returncode == 0, out.stdout + out.stderr
        open_at = datetime.now(UTC)
        set_patched(inv, OUTSIDE, False)  # every other area vulnerable again: only gw-y's lists stand between
        wait_for(lambda: len(worm_attempts(inv, open_at, set(OUTSIDE))) >= 10, 60,
                 "ten worm attempts at the other areas since they became vulnerable")
        yield Scenario(inv, journal, before, out.stdout, open_at)


def test_the_worm_inside_never_reaches_another_area(contained: Scenario) -> None:
    inv = contained.inv
    assert "the spread has stopped" in contained.contain_out
    assert not set(OUTSIDE) & set(infected(inv))
    tries = worm_attempts(inv, contained.open_at, set(OUTSIDE))
    assert tries and {t["result"] for t in tries} == {"timeout"}, tries  # dropped by gw-y, never answered


def test_traffic_proves_the_cut_and_management_stays_open(contained: Scenario) -> None:
    inv = contained.inv
    cut = matrix(inv, [probe(inv, "y-ws11", "inet-web", 80), probe(inv, "y-ws21", "x-ws11", 4445),
                       probe(inv, "hq-ws1", "y-ws12", 4445), probe(inv, "x-ws21", "y-ws21", 22)])
    assert "open" not in cut.values(), cut
    mgmt = matrix(inv, [probe(inv, "soc-console", h, 22) for h in ["gw-y", *INSIDE]])
    assert set(mgmt.values()) == {"open"}, mgmt
    # the device's lists are what the namespace's kernel enforces
    assert inv.lab is not None
    rules = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-gw-y", "nft", "list", "table", "inet", "ios"],
                           capture_output=True, text=True, check=True).stdout
    assert "jump acl_IRM-GW-Y-" in rules


def test_the_device_is_read_back_and_a_tampered_binding_is_named_then_put_back(contained: Scenario) -> None:
    inv = contained.inv
    ok = _irm(contained, "status", "--verify")
    assert ok.returncode == 0 and "every live ruleset is the one the journal says" in ok.stdout, ok.stdout
    bound = next(line.split()[2] for line in device(inv, "show running-config | include ip access-group").splitlines()
                 if "ip access-group IRM-GW-Y-" in line)
    device(inv, "configure terminal", "interface GigabitEthernet0/1", f"no ip access-group {bound} in", "end")
    drift = _irm(contained, "status", "--verify")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "DRIFT gw-y" in drift.stdout
    assert f"gw-y: interface GigabitEthernet0/1: no list bound in, not {bound}" in drift.stdout
    again = _irm(contained, "contain", "--area", AREA, "--yes", "--quiet-window", "2", "--confirm-timeout", "30")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _irm(contained, "status", "--verify").returncode == 0


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_a_second_journal_never_replaces_the_first_ones_access_list(contained: Scenario,
                                                                     tmp_path: Path) -> None:
    """Another SOC machine (its own journal, another vector) contains the same area: gw-y holds an irm list
    for a policy that journal never planned, so the apply refuses it before sending anything; the first
    journal's cut stands, by traffic, and its verify still finds exactly its own list."""
    inv = contained.inv
    holding = running_config(inv)
    other = tmp_path / "other.db"
    assert _irm(other, "incident", "open", "--worm", "Other.Worm", "--vector", "tcp/1139").returncode == 0
    refused = _irm(other, "contain", "--area", AREA, "--yes", "--no-loop", "--confirm-timeout", "30")
    assert refused.returncode != 0, refused.stdout + refused.stderr
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "gw-y: compare-and-swap refused: the device holds an irm access list or binding that none of the " \
        "policies this journal planned for it would put there" in said, said
    assert running_config(inv) == holding
    cut = matrix(inv, [probe(inv, "y-ws21", "x-ws11", 4445), probe(inv, "hq-ws1", "y-ws12", 4445)])
    assert "open" not in cut.values(), cut
    assert _irm(contained, "status", "--verify").returncode == 0


def test_recovery_leaves_the_running_config_as_it_was_before_the_incident(contained: Scenario) -> None:
    inv = contained.inv
    rem = _irm(contained, "remediate", "--area", AREA, "--plan", str(ROOT / "plans" / "lab-worm.yml"),
               "--canary", "y-ws11", "--yes")
    assert rem.returncode in (0, 5), rem.stdout + rem.stderr
    status = json.loads(_irm(contained, "status", "--json").stdout)["areas"][AREA]["remediation"]
    for host, r in status.items():
        if r["state"] != "verified":
            irm("lab", "fix-by-hand", host, check=True)
            assert _irm(contained, "mark-manual", host, "--technician", "technician").returncode == 0
    assert _irm(contained, *approve_args(inv, area=AREA)).returncode == 0
    wait_for(lambda: _quiet(inv, 3), 30, "no detection in subsidiary-y for 3 s")
    out = _irm(contained, "recover", "--area", AREA, "--yes", "--soak", "1s", "--quiet-window", "2s")
    assert out.returncode == 0, out.stdout + out.stderr
    assert running_config(inv) == contained.config_before
    after = matrix(inv, [probe(inv, "y-ws11", "inet-web", 80), probe(inv, "y-ws21", "x-ws11", 4445)])
    assert set(after.values()) == {"open"}, after


def _quiet(inv: Inventory, seconds: float) -> bool:
    from tests.integration.lab_tools import jsonl

    times = [datetime.fromisoformat(str(e["time"])) for h in INSIDE
             for e in jsonl(Path(inv.hosts[h].av_log or "/nonexistent"))]
    return not times or (datetime.now(UTC) - max(times)).total_seconds() > seconds
