"""`irm approve` and `irm recover` against the real lab: refusals, prompts, a reinfection during a soak,
a kill in the middle of a step, and a full recovery back to the baseline, proven by traffic.

One scenario for the module, in order: the worm is seeded in subsidiary-x/office-1 (hq and office-2
patched), the
area is contained (office-1 quarantined by the sub-area loop) and remediated (x-ws13 by hand), then
recovered step by step through the real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from tests.conftest import BIN, LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import (
    approve_args,
    infected,
    jsonl,
    matrix,
    probe,
    rulesets,
    set_patched,
    stages,
    wait_for,
)

pytestmark = pytest.mark.lab

OPERATOR = "op-recovery"
OFFICE_1 = "subsidiary-x/office-1"


@dataclass
class Scenario:
    inv: Inventory
    journal: Path
    baseline: dict[tuple[str, str, int], str]
    rules_before: dict[str, str]


def _irm(s: Scenario, *args: str, input_text: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return irm(*args, "--journal", str(s.journal), input_text=input_text, timeout=600,
               env={"IRM_OPERATOR": OPERATOR, **(env or {})})


def _recover(s: Scenario, *args: str, input_text: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _irm(s, "recover", "--area", "subsidiary-x", "--quiet-window", "2s", *args, input_text=input_text,
                env=env)


def _recover_in_background(s: Scenario, soak: str) -> subprocess.Popen[str]:
    """`irm recover --yes` started, its output kept for the test to read once it exits."""
    return subprocess.Popen([str(BIN / "irm"), "recover", "--area", "subsidiary-x", "--yes", "--soak", soak,
                             "--quiet-window", "2s", "--journal", str(s.journal)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200", "IRM_OPERATOR": OPERATOR})


def _quiet_for(inv: Inventory, area: str, seconds: float) -> bool:
    """No detection in the area's AV logs for ``seconds`` (the recovery's quiet window, with margin)."""
    times = [datetime.fromisoformat(str(e["time"])) for h in inv.area(area).hosts
             for e in jsonl(Path(inv.hosts[h].av_log or "/nonexistent"))]
    return not times or (datetime.now(UTC) - max(times)).total_seconds() > seconds


def _rows(journal: Path) -> list[tuple[str, str]]:
    return [(st.name, st.state) for st in stages(journal, "recovery")]


def _posture(journal: Path, scope: str) -> str | None:
    with closing(Journal.reader(journal)) as j:
        return j.stages.postures(1).get(scope)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    journal = tmp_path_factory.mktemp("recover") / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        s = Scenario(inv=inv, journal=journal, baseline=matrix(inv), rules_before=rulesets(inv))
        assert set(s.baseline.values()) == {"open"}
        # hq and office-2 patched: the worm stays in office-1, the only sub-area the loop quarantines
        set_patched(inv, ["hq-erp", "hq-ws1", "hq-ws2", "x-ws21", "x-ws22", "y-ws11", "y-ws12", "y-ws21"], True)
        _irm(s, "incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445")
        irm("lab", "infect", "x-ws11", check=True)
        contain = _irm(s, "contain", "--area", "subsidiary-x", "--yes", "--quiet-window", "4")
        assert contain.returncode == 0, contain.stdout + contain.stderr
        assert _posture(journal, OFFICE_1) == "quarantined"
        assert _posture(journal, "subsidiary-x/office-2") == "connected"
        _remediation_dry_run_changes_nothing(s)
        rem = _irm(s, "remediate", "--area", "subsidiary-x", "--plan", str(ROOT / "plans" / "lab-worm.yml"),
                   "--canary", "x-ws11", "--yes")
        assert rem.returncode in (0, 5), rem.stdout + rem.stderr
        status = json.loads(_irm(s, "status", "--json").stdout)["areas"]["subsidiary-x"]["remediation"]
        for host, r in status.items():
            if r["state"] != "verified":
                irm("lab", "fix-by-hand", host, check=True)
                done = _irm(s, "mark-manual", host, "--technician", "technician")
                assert done.returncode == 0, done.stdout + done.stderr
        assert not infected(inv)
        yield s


def _remediation_dry_run_changes_nothing(s: Scenario) -> None:
    """`irm remediate --dry-run` on the contained, infected area: every method in check mode shows what it
    would do on each host (the worm's process on x-ws11 would be killed), the verification as the hosts
    stand; every host's ruleset, the infection and the journal's remediation rows stay as they were."""
    before, sick = rulesets(s.inv), infected(s.inv)
    assert "x-ws11" in sick
    dry = _irm(s, "remediate", "--area", "subsidiary-x", "--plan", str(ROOT / "plans" / "lab-worm.yml"), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    out = " ".join(dry.stdout.split())
    assert "DRY RUN" in out and "method:disinfect (check mode) on" in out
    assert "x-ws11: Kill the worm's processes" in out and "killed" in out
    assert "verification now, x-ws11:" in out and "verification now, x-ws21: verifies already" not in out
    assert "host(s) of subsidiary-x would change; nothing was applied" in out
    assert rulesets(s.inv) == before and infected(s.inv) == sick
    status = json.loads(_irm(s, "status", "--json").stdout)["areas"]["subsidiary-x"]
    assert not status["remediation"], status["remediation"]


def test_recovery_is_refused_without_approval_with_self_approval_or_a_host_not_remediated(
        scenario: Scenario) -> None:
    s = scenario
    before = rulesets(s.inv)
    no_approval = _recover(s, "--yes")
    assert no_approval.returncode == 2
    assert "no management approval for 'subsidiary-x' in incident 1: an approver signs with 'irm approve --area " \
        "subsidiary-x --key FILE --reason TEXT'" in no_approval.stderr

    # an approval signed with a key the inventory does not list is refused before anything is journaled
    stranger = s.journal.parent / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    refused = _irm(s, "approve", "--area", "subsidiary-x", "--key", str(stranger), "--reason", "trust me")
    assert refused.returncode == 2 and "is not the key of an approver listed in" in refused.stderr

    # the approver running the recovery themself: four-eyes
    assert _irm(s, *approve_args(s.inv, reason="looks clean")).returncode == 0
    self_approved = _recover(s, "--yes", env={"IRM_OPERATOR": "ciso"})
    assert self_approved.returncode == 2
    assert "approval 1 by ciso does not count: ciso runs this recovery: another person must approve (four-eyes)" \
        in self_approved.stderr

    # One host no longer remediated on the host itself (its fix rolled back), though the journal says so.
    state = Path(s.inv.hosts["x-ws22"].state_dir)
    packages = (state / "packages.json").read_text()
    (state / "patched").unlink()
    (state / "packages.json").unlink()
    try:
        unremediated = _recover(s, "--yes")
        assert unremediated.returncode == 2
        assert "x-ws22 does not verify on the host now" in unremediated.stderr
        assert "still vulnerable" in unremediated.stderr and "nothing was changed" in unremediated.stderr
    finally:
        (state / "packages.json").write_text(packages)
        (state / "patched").write_text("irm-lab-svc 1.1\n")

    out_of_order = _recover(s, "--yes", "--only", "internet")
    assert out_of_order.returncode == 2
    assert ("internet cannot run now: the next step is step 1 (vectors), reopen the propagation traffic on the "
            "area hosts") in out_of_order.stderr
    assert "Traceback" not in no_approval.stderr + self_approved.stderr + out_of_order.stderr
    assert _rows(s.journal) == []
    assert rulesets(s.inv) == before


def test_the_prompts_work_through_the_real_cli(scenario: Scenario) -> None:
    s = scenario
    before = rulesets(s.inv)
    # the dry run first: every step left, in order, in check mode against the live tables; nothing changes
    dry = _recover(s, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    out = dry.stdout
    assert "every precondition holds" in out
    for label in ("step 1 (vectors)", "step 2 (subarea:subsidiary-x/office-1)", "step 3 (mobile)", "step 4 (lan)",
                  "step 5 (internet)"):
        assert label in out, out
    assert "x-ws11: vectors blocked -> open" in out and "+++ edge-fw:irm (planned)" in out
    assert "dry run: 5 step(s)" in out and "nothing was applied" in out
    assert _rows(s.journal) == [] and rulesets(s.inv) == before
    declined = _recover(s, "--soak", "1s", input_text="n\n")
    assert declined.returncode == 1, declined.stdout + declined.stderr
    assert "step 1 (vectors): reopen the propagation traffic" in declined.stdout
    assert "x-ws11: vectors blocked -> open" in declined.stdout
    assert "vectors declined: nothing changed" in declined.stdout
    assert _rows(s.journal) == [] and rulesets(s.inv) == before

    accepted = _recover(s, "--step", "--soak", "1s", input_text="y\n")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert _rows(s.journal) == [("vectors", "done")]
    assert "next: subarea:subsidiary-x/office-1" in accepted.stdout
    assert rulesets(s.inv) != before


def test_a_worm_reintroduced_during_a_subarea_soak_halts_and_requarantines(scenario: Scenario) -> None:
    s = scenario
    proc = _recover_in_background(s, "25s")
    try:
        wait_for(lambda: _posture(s.journal, OFFICE_1) == "connected", 120, "office-1 reconnected")
        office_2 = probe(s.inv, "x-ws11", "x-ws21", 22)
        assert matrix(s.inv, [office_2])[("x-ws11", "x-ws21", 22)] == "open"
        irm("lab", "infect", "x-ws11", check=True)  # the worm comes back in office-1
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    halted_at = datetime.now(UTC)
    assert proc.returncode == 4, stdout + stderr
    assert "recovery halted at step 2 (subarea:subsidiary-x/office-1): new infection during the soak" in stderr
    assert "x-ws11" in stderr and "the previous posture is back" in stderr
    assert _posture(s.journal, OFFICE_1) == "quarantined"
    assert _rows(s.journal)[-1] == ("subarea:subsidiary-x/office-1", "halted")
    # Proven by traffic: office-1 is cut from office-2 again; and by the worm's own log: its attempts at
    # office-2 after the halt time out.
    assert matrix(s.inv, [probe(s.inv, "x-ws11", "x-ws21", 22)])[("x-ws11", "x-ws21", 22)] == "timeout"
    log = Path(s.inv.hosts["x-ws11"].state_dir) / "worm.log"
    wait_for(lambda: any(r.get("target") in ("x-ws21", "x-ws22") and datetime.fromisoformat(r["time"]) > halted_at
                         for r in jsonl(log) if r.get("event") == "attempt"), 60, "the worm trying office-2")
    later = [r for r in jsonl(log) if r.get("event") == "attempt" and r.get("target") in ("x-ws21", "x-ws22")
             and datetime.fromisoformat(r["time"]) > halted_at]
    assert later and {r["result"] for r in later} == {"timeout"}
    assert set(infected(s.inv)) == {"x-ws11"}
    # The technician cleans x-ws11 again; the area is quiet before recovery goes on.
    irm("lab", "fix-by-hand", "x-ws11", check=True)


def test_a_detection_feed_lost_during_a_soak_halts_and_requarantines(scenario: Scenario) -> None:
    """The sensors' EVE log disappears while office-1's reconnection soaks: no detection from a feed irm
    cannot read is not "no infection"; the step halts and office-1 is cut again, proven by traffic."""
    s = scenario
    wait_for(lambda: _quiet_for(s.inv, "subsidiary-x", 2.5), 30, "the area quiet for the quiet window")
    assert s.inv.lab is not None
    eve = Path(s.inv.lab.state_dir) / "sensors" / "eve.json"
    assert eve.is_file()
    proc = _recover_in_background(s, "25s")
    try:
        wait_for(lambda: _posture(s.journal, OFFICE_1) == "connected", 120, "office-1 reconnected")
        eve.rename(eve.with_suffix(".lost"))  # the feed is gone (the sensor keeps writing to the moved file)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        if eve.with_suffix(".lost").exists():
            eve.with_suffix(".lost").rename(eve)
    assert proc.returncode == 4, stdout + stderr
    assert "cannot vouch for no infection: detection source suricata:" in stderr and "cannot be read" in stderr
    assert _posture(s.journal, OFFICE_1) == "quarantined"
    assert _rows(s.journal)[-1] == ("subarea:subsidiary-x/office-1", "halted")
    assert matrix(s.inv, [probe(s.inv, "x-ws11", "x-ws21", 22)])[("x-ws11", "x-ws21", 22)] == "timeout"


def test_killed_mid_step_recovery_resumes_and_restores_the_baseline_exactly(scenario: Scenario) -> None:
    s = scenario
    wait_for(lambda: _quiet_for(s.inv, "subsidiary-x", 2.5), 30, "the area quiet for the quiet window")
    proc = subprocess.Popen([str(BIN / "irm"), "recover", "--area", "subsidiary-x", "--yes", "--soak", "30s",
                             "--quiet-window", "2s", "--journal", str(s.journal)], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "200", "IRM_OPERATOR": OPERATOR})
    try:
        wait_for(lambda: _rows(s.journal)[-1] == ("subarea:subsidiary-x/office-1", "running")
                 and _posture(s.journal, OFFICE_1) == "connected", 120, "step 2 applied and soaking")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed = _recover(s, "--yes", "--soak", "1s")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming at subarea:subsidiary-x/office-1: it was interrupted" in resumed.stdout
    rows = _rows(s.journal)
    done = [name for name, state in rows if state == "done"]
    assert done == ["vectors", "subarea:subsidiary-x/office-1", "mobile", "lan", "internet"]
    assert [r for r in rows if r[1] not in ("done",)] == [("subarea:subsidiary-x/office-1", "halted")] * 2 + [
        ("subarea:subsidiary-x/office-1", "interrupted")]  # halted by the worm, then by the lost feed
    # Back to before the incident: every probe of the baseline matrix, every ruleset read back.
    assert matrix(s.inv) == s.baseline
    assert rulesets(s.inv) == s.rules_before
    status = json.loads(_irm(s, "status", "--json").stdout)["areas"]["subsidiary-x"]
    assert status["posture"] == "connected" and not status["vectors_blocked"] and not status["mobile_blocked"]
    assert [r["step"] for r in status["recovery"] if r["state"] == "done"] == done
    soaks = {r["step"]: r["soak"] for r in status["recovery"] if r["state"] == "done"}
    assert soaks["lan"]["probes"] > 0 and soaks["internet"]["probes"] > 0  # the paths they opened, probed
    assert not soaks["lan"].get("probes_closed") and soaks["lan"]["detections"] == []
    confirmations = {r["step"]: r["confirmation"] for r in status["recovery"] if r["state"] == "done"}
    assert confirmations["vectors"] == "y at the prompt" and confirmations["internet"] == "--yes"
    again = _recover(s, "--yes", "--only", "internet")
    assert again.returncode == 2 and "recovery of 'subsidiary-x' is complete: there is no step left" in again.stderr
