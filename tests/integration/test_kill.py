"""SIGKILL in the middle of each containment stage, then a re-run: every host's live irm table and the
connectivity matrix equal those of an uninterrupted run. The kill takes irm's whole process group (irm,
ansible-playbook, its workers), as a crashed SOC machine or a closed terminal would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import BIN, LAB_INVENTORY, ROOT, built_lab, irm
from tests.integration.lab_tools import approve_args, matrix, stages, wait_for
from tests.integration.test_faults import irm_table

pytestmark = pytest.mark.lab

# make test kills one host-level stage; bench/lab_campaign.sh adds a boundary stage and two recovery
# steps (one while it applies, one while it soaks); bench/kill_every_stage.sh sets IRM_KILL_EVERY_STAGE=1
# for every stage and every step (docs/benchmarks.md, "Fault campaign").
EVERY = os.environ.get("IRM_KILL_EVERY_STAGE") == "1"
STAGES = ("internet_cut", "isolate", "vectors", "mobile") if EVERY else (
    pytest.param("isolate", marks=pytest.mark.campaign), "vectors")
STEPS = (("vectors", "soak"), ("mobile", "apply"), ("lan", "soak"), ("internet", "apply")) if EVERY \
    else (("mobile", "apply"), ("lan", "soak"))
CONTAIN = ("--area", "subsidiary-x", "--yes", "--no-loop", "--confirm-timeout", "8")


def _open_incident(journal: Path) -> None:
    irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
        check=True)


def _end_state(inv: Inventory) -> tuple[dict[str, str], dict[tuple[str, str, int], str]]:
    return {h.name: irm_table(inv, h.name) for h in inv.managed_hosts}, matrix(inv)


def _running(journal: Path, stage: str) -> bool:
    return any(st.name == stage and st.state == "running" for st in stages(journal))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[tuple[str, str, int], str]]:
    """The end state of an uninterrupted run, on a lab of its own."""
    journal = tmp_path_factory.mktemp("reference") / "journal.db"
    with built_lab(LAB_INVENTORY) as lab:
        _open_incident(journal)
        irm("contain", *CONTAIN, "--journal", str(journal), check=True, timeout=600)
        return _end_state(load_inventory(lab))


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_during_a_containment_stage_then_a_rerun_converges(
        stage: str, reference: tuple[dict[str, str], dict[tuple[str, str, int], str]], tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with built_lab(LAB_INVENTORY) as lab:
        inv = load_inventory(lab)
        _open_incident(journal)
        proc = subprocess.Popen([str(BIN / "irm"), "contain", *CONTAIN, "--journal", str(journal)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: _running(journal, stage), 180, f"stage {stage} to start")
            time.sleep(1.0)  # the kill point (not a wait): 1 s into the stage's play, applied on some hosts
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rerun = irm("contain", *CONTAIN, "--journal", str(journal), timeout=600)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        tables, paths = _end_state(inv)
        ref_tables, ref_paths = reference
        assert tables == ref_tables
        assert paths == ref_paths
        # the interrupted stage is not left running, and the journal agrees with every live ruleset
        states = [st.state for st in stages(journal) if st.name == stage]
        assert states[-1] == "done" and "running" not in states
        assert irm("status", "--verify", "--journal", str(journal)).returncode == 0


def _step_row(journal: Path) -> tuple[str, str, dict[str, object]] | None:
    rows = stages(journal, "recovery")
    return (rows[-1].name, rows[-1].state, rows[-1].detail) if rows else None


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_sigkill_during_each_recovery_step_then_a_rerun_converges(tmp_path: Path) -> None:
    """One recovery killed in steps that change something (every one with IRM_KILL_EVERY_STAGE=1),
    alternately while the step's change is being applied and while it soaks; the last re-run ends where
    an uninterrupted recovery ends: the baseline matrix and no irm table anywhere (the hosts' rulesets
    before the incident)."""
    journal = tmp_path / "journal.db"
    env = {"IRM_OPERATOR": "op-kill"}
    with built_lab(LAB_INVENTORY) as lab:
        inv = load_inventory(lab)
        before, baseline = _end_state(inv)
        assert set(before.values()) == {""} and set(baseline.values()) == {"open"}
        _open_incident(journal)
        irm("contain", *CONTAIN, "--journal", str(journal), check=True, timeout=600)
        rem = irm("remediate", "--area", "subsidiary-x", "--plan", str(ROOT / "plans" / "lab-worm.yml"), "--yes",
                  "--journal", str(journal), timeout=900, env=env)
        assert rem.returncode == 0, rem.stdout + rem.stderr
        irm(*approve_args(inv), "--journal", str(journal), check=True)
        recover = [str(BIN / "irm"), "recover", "--area", "subsidiary-x", "--yes", "--soak", "8s",
                   "--quiet-window", "1s", "--confirm-timeout", "8", "--journal", str(journal)]
        for step, when in STEPS:
            proc = subprocess.Popen(recover, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True, env={**os.environ, **env})
            try:
                def reached(step: str = step, when: str = when) -> bool:
                    row = _step_row(journal)
                    return row is not None and row[0] == step and row[1] == "running" and (
                        "applied_at" in row[2]) == (when == "soak")
                wait_for(reached, 300, f"step {step} ({when})", interval=0.05)
                if when == "apply":
                    time.sleep(0.5)  # the kill point (not a wait): half a second into the step's play
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        last = irm(*recover[1:], timeout=600, env=env)
        assert last.returncode == 0, last.stdout + last.stderr
        tables, paths = _end_state(inv)
        assert tables == before
        assert paths == baseline
        states = [(st.name, st.state) for st in stages(journal, "recovery")]
        assert [n for n, s in states if s == "done"] == ["vectors", "subareas", "mobile", "lan", "internet"]
        assert {s for _, s in states} <= {"done", "interrupted"}
