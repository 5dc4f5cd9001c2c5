"""Any inventory that follows the schema builds a working lab: the minimal one in tests/fixtures/mini
has other names, addresses, prefix lengths, worm ports, a 3-second worm lifetime and an AV that
misses everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import runner
from orchestrator.core.inventory.load import load_inventory
from orchestrator.lab import traffic
from tests.conftest import irm
from tests.integration.lab_tools import jsonl, wait_for

pytestmark = pytest.mark.lab


def test_mini_lab_builds_from_its_inventory(mini_lab: Path) -> None:
    inv = load_inventory(mini_lab)
    status = json.loads(irm("lab", "status", "-i", str(mini_lab), "--json", check=True).stdout)
    assert status["up"] and set(status["hosts"]) == {"spine", "border", "plant-gw", "cloud", "hmi-1", "hmi-2"}
    assert all(h["namespace"] and h["sshd"] for h in status["hosts"].values())

    result = runner.run_playbook("reach", mini_lab)
    assert result.succeeded and set(result.hosts) == {h.name for h in inv.managed_hosts}

    results = traffic.run_probes(inv, traffic.baseline_probes(inv))
    assert results and all(r.open for r in results), [r for r in results if not r.open]
    assert {r.probe.service for r in results} == {"ssh", "scada", "api"}

    irm("lab", "infect", "hmi-1", "-i", str(mini_lab), check=True)
    hmi1 = Path(inv.hosts["hmi-1"].state_dir)
    hmi2 = Path(inv.hosts["hmi-2"].state_dir)
    wait_for(lambda: (hmi2 / "infected.json").exists(), 15, "hmi-2 infected by hmi-1")
    assert json.loads((hmi2 / "infected.json").read_text())["source_host"] == "hmi-1"

    # lifetime 3 s: both worms stop by themselves
    def worm_log(state: Path) -> list[dict[str, Any]]:
        return jsonl(state / "worm.log")

    wait_for(lambda: all(worm_log(s) and worm_log(s)[-1]["event"] == "stop" for s in (hmi1, hmi2)), 15,
             "both worms to stop at the end of their lifetime")
    for state in (hmi1, hmi2):
        log = worm_log(state)
        assert log[-1]["event"] == "stop" and log[-1]["reason"] == "lifetime"
        assert {e["port"] for e in log if e["event"] == "attempt"} <= {7001, 7002}
    # miss rate 1.0: the AV reported nothing
    assert not (hmi1 / "edr.jsonl").exists() and not (hmi2 / "edr.jsonl").exists()
