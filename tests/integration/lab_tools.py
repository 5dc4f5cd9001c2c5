"""Reading the lab's real state back: rulesets from every namespace, infections, worm logs, the journal."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.inventory import Inventory
from orchestrator.lab import traffic


def rulesets(inv: Inventory) -> dict[str, str]:
    """`nft list ruleset` read back from every lab host."""
    assert inv.lab is not None
    out = {}
    for host in inv.managed_hosts:
        out[host.name] = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host.name}", "nft", "list",
                                         "ruleset"], capture_output=True, text=True, check=True).stdout
    return out


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def infected(inv: Inventory) -> dict[str, dict[str, Any]]:
    found = {}
    for host in inv.managed_hosts:
        marker = Path(host.state_dir) / "infected.json"
        if marker.exists():
            found[host.name] = json.loads(marker.read_text())
    return found


def worm_attempts(inv: Inventory, since: datetime, targets: set[str]) -> list[dict[str, Any]]:
    """Every attempt any worm made at ``targets`` after ``since``, from the worms' own logs."""
    attempts = []
    for host in inv.managed_hosts:
        for rec in jsonl(Path(host.state_dir) / "worm.log"):
            if (rec.get("event") == "attempt" and rec.get("target") in targets
                    and datetime.fromisoformat(rec["time"]) > since):
                attempts.append({**rec, "from": host.name})
    return attempts


def set_patched(inv: Inventory, hosts: list[str], patched: bool) -> None:
    for name in hosts:
        marker = Path(inv.hosts[name].state_dir) / "patched"
        if patched:
            marker.write_text("test\n")
        else:
            marker.unlink(missing_ok=True)


def stage_states(journal: Path) -> dict[str, str]:
    if not journal.exists():
        return {}
    db = sqlite3.connect(journal)
    try:
        return {name: state for name, state in db.execute("SELECT name, state FROM stages WHERE check_mode=0")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def matrix(inv: Inventory, probes: list[traffic.Probe] | None = None) -> dict[tuple[str, str, int], str]:
    results = traffic.run_probes(inv, probes or traffic.baseline_probes(inv), timeout=0.7)
    return {(r.probe.source, r.probe.target, r.probe.port): r.outcome for r in results}


def probe(inv: Inventory, source: str, target: str, port: int) -> traffic.Probe:
    return traffic.Probe(source=source, target=target, address=str(inv.hosts[target].address), port=port,
                         service=str(port))
