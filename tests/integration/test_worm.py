"""The lab worm spreads by real TCP through the lab, writes AV detections, respects patches and bounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.lab import builder
from tests.conftest import NODE_AREA_HOSTS, irm
from tests.integration.lab_tools import jsonl, wait_for

pytestmark = pytest.mark.lab


def infected(inv: Inventory) -> dict[str, builder.Infection]:
    return {i.host: i for i in builder.infections(inv)}


def test_worm_spreads_to_other_sub_areas_and_to_hq(fresh_lab: Path) -> None:
    inv = load_inventory(fresh_lab)
    seeded = irm("lab", "infect", "x-ws11")
    assert seeded.returncode == 0, seeded.stderr
    wait_for(lambda: {"subsidiary-x/office-2", "hq/office"} <= {i.segment for i in infected(inv).values()}
             or {"subsidiary-x/office-2", "hq/servers"} <= {i.segment for i in infected(inv).values()},
             60, "infections in office-2 and in hq")
    found = infected(inv)
    assert found["x-ws11"].source_address == "seed"
    # who infected whom is consistent: every source was itself infected earlier, at the address it has
    for inf in found.values():
        if inf.host == "x-ws11":
            continue
        assert inf.source_host in found, inf
        source = found[inf.source_host]
        assert source.since < inf.since
        assert inf.source_address == str(inv.hosts[inf.source_host].address)
    # each worm runs inside its own host's namespace (a host infected a moment ago is still starting it)
    pidfiles = [Path(inv.hosts[name].state_dir) / "worm.pid" for name in found]
    wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pidfiles), 10, "every worm's pid file")
    for name in found:
        pid = int((Path(inv.hosts[name].state_dir) / "worm.pid").read_text())
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/irmlab-{name}").st_ino
    # the AV reports each infection after the configured delay (miss rate 0 in the shipped lab): every
    # host infected at the snapshot above is checked, none skipped
    assert inv.lab is not None
    delay = inv.lab.worm.detection_delay
    assert len(found) >= 3

    def av_events(name: str) -> list[dict[str, object]]:
        return jsonl(Path(inv.hosts[name].av_log or ""))

    wait_for(lambda: all(av_events(name) for name in found), delay + 10, "a detection for every infected host")
    for name, inf in found.items():
        events = av_events(name)
        assert len(events) == 1, (name, events)
        ev = events[0]
        assert ev["host"] == name and ev["signature"] == inv.lab.worm.signature and ev["action"] == "detected"
        assert ev["source_address"] == inf.source_address
        lag = datetime.fromisoformat(str(ev["time"])) - datetime.fromisoformat(inf.since)
        assert delay <= lag.total_seconds() < delay + 2.0
    # the worm's own log on the seed host shows real connection attempts that infected others
    log = jsonl(Path(inv.hosts["x-ws11"].state_dir) / "worm.log")
    assert log[0]["event"] == "start"
    assert any(e.get("result") == "infected" for e in log)
    assert all(e.get("port") == 4445 for e in log if e["event"] == "attempt")
    # the CLI lists who is infected, since when and from whom
    listed = json.loads(irm("lab", "infections", "--json", check=True).stdout)
    assert {row["host"] for row in listed} >= set(found)


def test_patched_host_rejects_the_payload(fresh_lab: Path) -> None:
    inv = load_inventory(fresh_lab)
    patched = inv.hosts["hq-ws1"]
    (Path(patched.state_dir) / "patched").write_text("lab patch\n")
    irm("lab", "infect", "x-ws21", check=True)
    vulnerable = ({h.name for h in inv.hosts.values() if h.kind == "area" and h.vulnerable} - {"hq-ws1"}
                  - set(NODE_AREA_HOSTS))  # (test labs start with subsidiary-z patched)

    def rejected() -> bool:
        return any(e.get("target") == "hq-ws1" and e.get("result") == "rejected"
                   for name in infected(inv) for e in jsonl(Path(inv.hosts[name].state_dir) / "worm.log"))

    wait_for(lambda: set(infected(inv)) == vulnerable and rejected(), 90, "every unpatched host infected")
    assert "hq-ws1" not in infected(inv)
    assert not (Path(patched.state_dir) / "infected.json").exists()


def test_disinfected_host_stops_its_worm(fresh_lab: Path) -> None:
    inv = load_inventory(fresh_lab)
    irm("lab", "infect", "x-lt1", check=True)
    state = Path(inv.hosts["x-lt1"].state_dir)
    pid = int((state / "worm.pid").read_text())
    (state / "patched").write_text("")  # patch first, or a neighbour re-infects it at once
    (state / "infected.json").unlink()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
             10, "the worm to stop")
    assert jsonl(state / "worm.log")[-1]["reason"] == "disinfected"


def test_worm_and_seed_refuse_to_run_outside_a_lab_namespace(lab: Path) -> None:
    inv = load_inventory(lab)
    cfg = Path(inv.hosts["x-ws12"].state_dir) / "lab" / "agent.json"
    for command in ("worm", "guard", "seed", "run", "pkg", "av", "check", "handfix"):
        proc = subprocess.run([sys.executable, "-m", "orchestrator.lab.agent", "--config", str(cfg), command],
                              capture_output=True, text=True, timeout=20, check=False)
        assert proc.returncode != 0
        assert "refusing to" in proc.stderr and "not inside lab namespace irmlab-x-ws12" in proc.stderr, command
    assert not (Path(inv.hosts["x-ws12"].state_dir) / "infected.json").exists()


def test_infect_errors_are_one_line(lab: Path) -> None:
    for host, message in (
        ("gw-x", "irm: error: host 'gw-x' is a gateway, not an area host: the lab worm infects area hosts"),
        ("nope", "irm: error: unknown host 'nope' in inventories/lab"),
    ):
        proc = irm("lab", "infect", host)
        assert proc.returncode == 2 and proc.stderr.strip() == message


def test_infect_needs_a_lab() -> None:
    irm("lab", "down", "-i", "tests/fixtures/mini")
    proc = irm("lab", "infect", "hmi-1", "-i", "tests/fixtures/mini")
    assert proc.returncode == 3
    assert proc.stderr.strip() == ("irm: error: lab 'irmmini' is not up: run 'irm lab up --inventory "
                                   "tests/fixtures/mini' first")
