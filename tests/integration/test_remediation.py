"""`irm remediate` against the real lab: canaries first, fall-through, manual work, proven on the hosts.

One scenario for the module: the worm is seeded in subsidiary-x, the area is contained, then every
office-1 host and x-ws21 are infected with their worms running. Per inventories/lab/hosts.yml, x-ws12's
worm kills the antivirus, x-ws21's holds the package manager's lock, and x-ws13's does both and has
a watchdog that restarts it. What counts is read back from the hosts: the infection markers, the
worms' processes and logs, the lab package database, and real traffic.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from tests.conftest import LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import events, infected, jsonl, set_patched, wait_for

pytestmark = pytest.mark.lab

PLAN = ROOT / "plans" / "lab-worm.yml"
OFFICE_1 = ["x-ws11", "x-ws12", "x-ws13"]
INFECTED = [*OFFICE_1, "x-ws21"]


@dataclass
class Lab:
    inv: Inventory
    journal: Path
    tmp: Path


def _worm_pid(inv: Inventory, host: str) -> int | None:
    pid_file = Path(inv.hosts[host].state_dir) / "worm.pid"
    try:
        pid = int(pid_file.read_text())
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, ValueError):
        return None
    return pid if state != "Z" else None


def _ns(inv: Inventory, host: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    assert inv.lab is not None
    return subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host}", *cmd], capture_output=True, text=True,
                          timeout=30, check=False)


def _tool(inv: Inventory, host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _ns(inv, host, str(Path(inv.hosts[host].state_dir) / "lab" / "bin" / "irm-lab-tool"), *args)


def _states(journal: Path) -> dict[str, str]:
    with closing(Journal.reader(journal)) as j:
        return {h: r["state"] for inc in j.incidents.all() for h, r in j.remediation.of(inc.id).items()}


def _events(journal: Path, kind: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in events(journal, kind)]


def _remediate(*args: str, journal: Path, inventory: Path = LAB_INVENTORY) -> subprocess.CompletedProcess[str]:
    return irm("remediate", "--area", "subsidiary-x", "--plan", str(PLAN), "--yes", "--journal", str(journal),
               "-i", str(inventory), *args, timeout=600)


@pytest.fixture(scope="module")
def contained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("remediate")
    journal = tmp / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        set_patched(inv, ["hq-erp", "hq-ws1", "hq-ws2", "y-ws11", "y-ws12", "y-ws21"], True)
        irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
            check=True)
        irm("lab", "infect", "x-ws11", check=True)
        irm("contain", "--area", "subsidiary-x", "--yes", "--no-loop", "--journal", str(journal), check=True,
            timeout=300)
        for host in INFECTED:
            if host not in infected(inv):
                irm("lab", "infect", host, check=True)
        wait_for(lambda: all(_worm_pid(inv, h) for h in INFECTED), 20, "a running worm on every seeded host")
        yield Lab(inv=inv, journal=journal, tmp=tmp)


def test_answering_no_at_the_prompt_applies_nothing(contained: Lab) -> None:
    journal = contained.tmp / "journal-prompt.db"
    shutil.copy(contained.journal, journal)
    proc = irm("remediate", "--area", "subsidiary-x", "--plan", str(PLAN), "--canary", "x-ws11", "--journal",
               str(journal), input_text="n\n")
    assert proc.returncode == 1 and "canaries first: x-ws11" in proc.stdout and "nothing applied" in proc.stdout
    assert _states(journal) == {}
    assert set(INFECTED) <= set(infected(contained.inv))


def test_a_canary_failing_its_health_check_stops_everything(contained: Lab) -> None:
    inv = contained.inv
    # The same lab, with a health check on x-ws11 that nothing answers (injected failure).
    broken = contained.tmp / "inventory-broken-health"
    shutil.copytree(LAB_INVENTORY, broken)
    (broken / "host_vars").mkdir(exist_ok=True)
    (broken / "host_vars" / "x-ws11.yml").write_text(yaml.safe_dump(
        {"irm_health_checks": [{"name": "intranet", "host": "hq-erp", "port": 8070}]}))
    journal = contained.tmp / "journal-canary.db"
    shutil.copy(contained.journal, journal)

    proc = _remediate("--canary", "x-ws11", journal=journal, inventory=broken)

    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "canary x-ws11 failed, the other 6 host(s) were not touched" in proc.stderr
    assert "x-ws11: intranet 198.18.16.10:8070 (TimeoutError)" in proc.stderr  # dropped at the gateway
    states = _states(journal)
    assert states.pop("x-ws11") == "failed"
    assert set(states.values()) == {"pending"}
    for host in inv.area("subsidiary-x").hosts:
        if host != "x-ws11":  # nothing else was touched: no package, no signature update, no fix
            state = Path(inv.hosts[host].state_dir)
            assert not any((state / f).exists() for f in ("packages.json", "av-signatures", "patched")), host
    assert set(INFECTED[1:]) <= set(infected(inv))
    assert all(_worm_pid(inv, h) for h in INFECTED[1:])


def test_remediation_falls_through_lists_manual_work_and_verifies_on_the_hosts(contained: Lab) -> None:
    inv, journal = contained.inv, contained.journal
    area_hosts = list(inv.area("subsidiary-x").hosts)

    proc = _remediate("--canary", "x-ws11", journal=journal)

    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "needing manual work: x-ws13 (manual-needed: no working method for disinfect, fix" in proc.stderr
    states = _states(journal)
    assert states == {**{h: "verified" for h in area_hosts}, "x-ws13": "manual-needed"}
    failed = {(e["host"], e["method"]) for e in _events(journal, "remediation_method_failed")}
    # x-ws12: the worm killed the antivirus, the disinfection method took over.
    assert ("x-ws12", "antivirus") in failed and ("x-ws12", "disinfect") not in failed
    # x-ws21: the package lock was held by the worm; once disinfected, the package method worked.
    assert ("x-ws21", "package") in failed
    assert [e["hosts"] for e in _events(journal, "remediation_retry")] == [["x-ws21"]]
    # x-ws13: every method failed; the watchdog brought the worm back after the disinfection.
    assert {("x-ws13", m) for m in ("package", "antivirus", "disinfect")} <= failed
    # Checked on the hosts: no marker, no worm process, the fixed package, the service refuses.
    assert set(infected(inv)) == {"x-ws13"}
    for host in area_hosts:
        if host == "x-ws13":
            continue
        assert _worm_pid(inv, host) is None, host
        assert _tool(inv, host, "pkg", "query", "irm-lab-svc").stdout.strip() == "1.1", host
        assert _tool(inv, host, "check").returncode == 0, host
    assert _worm_pid(inv, "x-ws13") is not None
    assert _tool(inv, "x-ws13", "check").returncode == 1
    status = json.loads(irm("status", "--json", "--journal", str(journal), check=True).stdout)
    assert status["areas"]["subsidiary-x"]["remediation"]["x-ws13"]["state"] == "manual-needed"

    # mark-manual before the work is done: recorded, verified on the host, refused.
    early = irm("mark-manual", "x-ws13", "--technician", "tech-a", "--journal", str(journal))
    assert early.returncode == 5 and "verification on the host failed" in early.stderr
    assert _states(journal)["x-ws13"] == "manual-needed"

    # The technician at the console: stop the worm and its watchdog, remove the marker, install the fix.
    irm("lab", "fix-by-hand", "x-ws13", check=True)
    wait_for(lambda: _worm_pid(inv, "x-ws13") is None, 10, "the worm on x-ws13 to die")

    done = irm("mark-manual", "x-ws13", "--technician", "tech-a", "--note", "console", "--journal", str(journal))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _states(journal) == {h: "verified" for h in area_hosts}
    assert not infected(inv)
    assert len(_events(journal, "remediation_manual_done")) == 2
    status = json.loads(irm("status", "--json", "--journal", str(journal), check=True).stdout)
    rem = status["areas"]["subsidiary-x"]["remediation"]
    assert rem["x-ws13"]["state"] == "verified" and rem["x-ws13"]["method"] == "manual"

    # A re-seeded worm cannot infect a remediated host: open the vector between two office-1 hosts
    # (as recovery would) and let a worm seeded on x-ws12 try, over real traffic.
    for host in ("x-ws11", "x-ws12"):
        assert _ns(inv, host, "nft", "delete", "table", "inet", "irm").returncode == 0
    irm("lab", "infect", "x-ws12", check=True)
    log = Path(inv.hosts["x-ws12"].state_dir) / "worm.log"
    wait_for(lambda: any(r.get("target") == "x-ws11" and r.get("result") == "rejected" for r in jsonl(log)), 60,
             "the re-seeded worm's attempt at x-ws11")
    assert "x-ws11" not in infected(inv)


def test_a_hostile_plan_is_data_nothing_in_it_is_evaluated(contained: Lab) -> None:
    """A plan from outside holding Jinja and shell in every free-text value: remediation runs with it on
    the real hosts, no template or command in it ever runs (on the controller or a host), and the
    journal keeps it verbatim."""
    tag = f"irm-canary-{time.time_ns()}"
    canaries = [contained.tmp / f"{tag}-{i}" for i in range(4)]
    home = Path.home() / tag  # the slash-free payloads (process names) would write here
    plan = yaml.safe_load(PLAN.read_text())
    plan["name"] = f"{{{{ lookup('pipe', 'touch {canaries[0]}') }}}} $(touch {canaries[1]})"
    plan["validated_by"] = f"{{% set x = lookup('pipe', 'touch {canaries[2]}') %}}CERT `touch {canaries[3]}`"
    plan["disinfection"]["processes"] = ["irm-lab-worm", f"{{{{ lookup('pipe', 'cd; touch {tag}') }}}}"]
    plan["disinfection"]["files"] = ["/infected.json", f"/tmp/{{{{ lookup('pipe', 'cd; touch {tag}') }}}}/x"]
    hostile = contained.tmp / "hostile-plan.yml"
    hostile.write_text(yaml.safe_dump(plan))
    journal = contained.tmp / "journal-hostile.db"
    shutil.copy(contained.journal, journal)

    proc = irm("remediate", "--area", "subsidiary-x", "--plan", str(hostile), "--canary", "x-ws11", "--yes",
               "--journal", str(journal), timeout=600)

    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # x-ws13's watchdog may still need a technician
    assert "Traceback" not in proc.stderr
    assert not [c for c in [*canaries, home] if c.exists()], "a template or shell payload of the plan was evaluated"
    with closing(Journal.reader(journal)) as j:
        stored_plan = j.remediation.latest_plan(1, "subsidiary-x")
    assert stored_plan is not None
    assert stored_plan["name"] == plan["name"] and stored_plan["validated_by"] == plan["validated_by"]
    assert stored_plan["disinfection"]["processes"] == plan["disinfection"]["processes"]
    assert _states(journal)["x-ws11"] == "verified"  # the plan did its real work on the canary
