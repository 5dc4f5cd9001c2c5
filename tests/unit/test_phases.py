"""The phase tables: one numbering, playbooks that exist, rollbacks that undo, and the runbook agrees."""

from __future__ import annotations

import re

import yaml

from orchestrator.containment.table import CONTAINMENT, containment_stage
from orchestrator.core.phases import Phase
from orchestrator.core.posture import AreaState
from orchestrator.recovery.table import RECOVERY, recovery_step
from tests.conftest import ROOT

RUNBOOK = "".join(p.read_text() for p in sorted((ROOT / "docs" / "runbook").glob("*.md")))


def _table(marker: str) -> list[list[str]]:
    block = RUNBOOK.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    rows = [ln for ln in block.strip().splitlines()[2:]]
    return [[c.strip().strip("`") for c in row.strip("|").split("|")] for row in rows]


def test_one_numbering_from_1_and_every_playbook_exists() -> None:
    for table in (CONTAINMENT, RECOVERY):
        assert [p.number for p in table] == list(range(1, len(table) + 1))
        for phase in table:
            assert (ROOT / "playbooks" / f"{phase.playbook}.yml").is_file(), phase.playbook
            assert re.match(r"^RA\d{4}$", phase.react.id)
    for step in RECOVERY:
        assert step.rollback in {p.playbook for p in CONTAINMENT}, step.name


def test_playbook_names_and_play_names_carry_the_table_number() -> None:
    for kind, table in (("contain", CONTAINMENT), ("recover", RECOVERY)):
        for phase in table:
            assert phase.playbook.startswith(f"{kind}_{phase.number}_"), phase.playbook
            plays = yaml.safe_load((ROOT / "playbooks" / f"{phase.playbook}.yml").read_text())
            word = "Containment" if kind == "contain" else "Recovery"
            assert plays and all(p["name"].startswith(f"{word} {phase.number} - ") for p in plays), phase.playbook
        numbered = sorted(f.stem for f in (ROOT / "playbooks").glob(f"{kind}_[0-9]_*.yml"))
        assert numbered == sorted(p.playbook for p in table)


def test_the_readme_tables_are_the_phase_tables() -> None:
    def row(p: Phase, rollback: bool) -> list[str]:
        return [str(p.number), p.name, p.where.value, p.playbook, *([str(p.rollback)] if rollback else []),
                p.react.id, p.title]

    assert _table("containment-stages") == [row(p, False) for p in CONTAINMENT]
    assert _table("recovery-steps") == [row(p, True) for p in RECOVERY]


def test_recovery_undoes_containment_step_by_step() -> None:
    start = AreaState()
    st = start
    for stage in CONTAINMENT:
        st = stage.transition(st, "x/office-1" if stage.name == "subarea" else None)
    assert st == AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True, quarantined={"x/office-1"})
    for step in RECOVERY:
        st = step.transition(st, "x/office-1" if step.name == "subareas" else None)
    assert st == start


def test_each_step_belongs_to_its_rollback_and_sub_area_names() -> None:
    assert recovery_step("subarea:x/office-1").name == "subareas"
    assert recovery_step("mobile:rollback").name == "mobile" and recovery_step("lan:restore").name == "lan"
    assert containment_stage("vectors").number == 3
