"""What contain refuses, and what it leaves untouched: read back from the hosts, proven by traffic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import proc_start
from tests.conftest import LAB_INVENTORY, irm
from tests.integration.lab_tools import matrix, rulesets, stage_states

pytestmark = pytest.mark.lab

CUT_SOC = json.dumps({"gw-x": {"forward": [
    {"action": "drop", "src": ["198.18.0.2/32"], "comment": "test: careless rule cutting the SOC"}]}})


def incident(tmp_path: Path) -> Path:
    journal = tmp_path / "journal.db"
    irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
        check=True)
    return journal


def inventory_with_flow(tmp_path: Path, **changes: object) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv)
    data = yaml.safe_load((inv / "hosts.yml").read_text())
    flow = data["all"]["children"]["area_subsidiary_x"]["vars"]["irm_critical_flows"][0]
    flow.update(changes)
    (inv / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return inv


def contain(journal: Path, *extra: str, env: dict[str, str] | None = None,
            faults: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return irm("contain", "--area", "subsidiary-x", "--journal", str(journal), "--quiet-window", "2", *extra,
               env=env, faults=faults, timeout=300)


def test_dry_run_changes_nothing_and_shows_the_changes(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    journal = incident(tmp_path)
    before_rules, before_matrix = rulesets(inv), matrix(inv)
    proc = contain(journal, "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rulesets(inv) == before_rules  # byte for byte, read back from every host
    assert matrix(inv) == before_matrix
    out = proc.stdout
    assert "DRY RUN" in out and "nothing was applied" in out
    assert "isolate - gw-x" in out and "internet_cut - edge-fw" in out and "vectors - x-ws11" in out
    assert '+        ip saddr { 198.18.32.0/24, 198.18.33.0/24, 198.18.40.0/24 } drop comment "area subsidiary-x ' \
           'cut from the Internet"' in out
    assert "+        tcp dport 4445 counter drop" in out  # a vector's drops are counted
    assert stage_states(journal) == {}  # no applied stage journaled


def test_without_yes_the_operator_confirms_and_n_changes_nothing(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    journal = incident(tmp_path)
    before = rulesets(inv)
    proc = irm("contain", "--area", "subsidiary-x", "--journal", str(journal), input_text="n\n")
    assert proc.returncode == 1
    assert "Apply containment to subsidiary-x? [y/N]" in proc.stdout and "nothing applied" in proc.stdout
    assert "kept open (subsidiary-x): erp-orders" in proc.stdout
    assert ("5. subarea: quarantine every sub-area that shows detections or whose worm irm's rules drop, until none "
            "for 30s") in proc.stdout
    assert rulesets(inv) == before
    # without the loop, the plan says so
    proc = irm("contain", "--area", "subsidiary-x", "--no-loop", "--journal", str(journal), input_text="n\n")
    assert proc.returncode == 1 and "nothing applied" in proc.stdout
    assert "5. subarea: skipped (--no-loop): no sub-area is watched or quarantined" in proc.stdout
    assert "5. subarea: quarantine" not in proc.stdout
    assert rulesets(inv) == before


@pytest.mark.parametrize(("changes", "message"), [
    ({"ports": [4445]}, "irm: error: critical flow 'erp-orders' of area 'subsidiary-x': uses tcp/4445, a "
                        "propagation vector of the incident: refused"),
    ({"validated_by": None}, "irm: error: critical flow 'erp-orders' of area 'subsidiary-x': not validated "
                             "(validated_by and validated_at are required)"),
    ({"sources": ["0.0.0.0/0"]}, "critical flow 'erp-orders': source '0.0.0.0/0' is the whole address space; "
                                 "name explicit hosts or prefixes"),
])
def test_bad_critical_flow_is_refused_with_nothing_applied(lab: Path, tmp_path: Path, changes: dict[str, object],
                                                           message: str) -> None:
    inv = load_inventory(lab)
    journal = incident(tmp_path)
    before = rulesets(inv)
    proc = irm("contain", "--area", "subsidiary-x", "--yes", "--journal", str(journal), "-i",
               str(inventory_with_flow(tmp_path, **changes)))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert rulesets(inv) == before


def test_a_ruleset_that_cuts_management_is_refused(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    journal = incident(tmp_path)
    before = rulesets(inv)
    proc = contain(journal, "--yes", faults={"IRM_FAULT_EXTRA_RULES": CUT_SOC})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert ("irm: error: would lock the operator out: management to x-ws11 (tcp/22) dropped at gw-x (forward: "
            "test: careless rule cutting the SOC)") in lines
    assert lines[-1] == "irm: error: nothing was applied"
    assert rulesets(inv) == before


def test_bad_input(lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(lab)
    before = rulesets(inv)
    journal = tmp_path / "journal.db"
    proc = contain(journal, "--yes")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"irm: error: no journal at {journal} (open an incident first, or pass --journal / IRM_JOURNAL)")
    assert not journal.exists()  # a refused containment creates no journal
    journal = incident(tmp_path)
    proc = irm("contain", "--area", "subsidiary-w", "--yes", "--journal", str(journal))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "irm: error: unknown area 'subsidiary-w'; areas in inventories/lab: hq, subsidiary-x, subsidiary-y, "
        "subsidiary-z")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import sqlite3
        db = sqlite3.connect(journal)
        db.execute("INSERT INTO locks(area, incident_id, pid, hostname, operator, since, token, pid_start) "
                   "VALUES ('subsidiary-x', 1, ?, ?, 'alice', '2026-11-26T04:00:00', 'run-x', ?)",
                   (holder.pid, os.uname().nodename, proc_start(holder.pid)))
        db.commit()
        db.close()
        proc = contain(journal, "--yes")
        assert proc.returncode == 2 and proc.stderr.strip() == (
            f"irm: error: area 'subsidiary-x' is locked by a running irm (pid {holder.pid}, operator alice, since "
            "2026-11-26T04:00:00): wait for it, or if that process is gone for good, 'irm unlock subsidiary-x "
            "--reason TEXT'")
    finally:
        holder.kill()
        holder.wait()
    assert rulesets(inv) == before
