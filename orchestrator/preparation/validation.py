"""``irm validate``: everything a later command would refuse, checked before any crisis.

The inventory schema is checked when it is loaded; this adds what ``contain``, ``remediate`` and the
lab check only when they run: the chokepoint groups, the lab's address space, every critical flow
against the incident's vectors, the management path under every area's full containment, and the
plan and incident files the crisis cell has ready. Pure apart from reading the files it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from orchestrator.core import checks
from orchestrator.core.errors import UserError
from orchestrator.core.incident import Vector, spec_from_file
from orchestrator.core.inventory import Inventory
from orchestrator.core.posture import AreaState, policies
from orchestrator.remediation.plan import plan_from_file

REQUIRED_GROUPS = {
    "soc": "the operator's machine: every management path starts there",
    "core": "the router between the SOC, the areas and the edge",
    "edge": "the Internet boundary: the first cut of every containment goes there",
}


def _contained(inv: Inventory, area: str) -> AreaState:
    return AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                     quarantined={s.qualified for s in inv.areas[area].sub_areas})


def inventory_problems(inv: Inventory, vectors: list[Vector],
                       lab_problems: Callable[[Inventory], list[str]] | None = None) -> list[str]:
    """What ``contain`` (for any area) or ``lab up`` would refuse in this inventory; ``lab_problems`` is
    the lab's own check of its addressing (the caller passes it for a lab inventory)."""
    problems = [f"{inv.source}: group '{group}' needs one host ({why})"
                for group, why in REQUIRED_GROUPS.items() if getattr(inv, group) is None]
    if not inv.areas:
        problems.append(f"{inv.source}: no area (a group with irm_area: true and sub-area groups under it)")
    if problems:
        return problems
    problems += lab_problems(inv) if lab_problems is not None else []
    for area in inv.areas.values():  # a flow through two areas is named once
        problems += [line for line in (f"{inv.source}: {p}" for p in checks.check_critical_flows(inv, area, vectors))
                     if line not in problems]
    # the management path under each area's full containment, and under all of them at once
    layouts = [{name: _contained(inv, name)} for name in inv.areas]
    layouts.append({name: _contained(inv, name) for name in inv.areas})
    for states in layouts:
        for line in checks.check_management(inv, policies(inv, vectors, states)):
            label = ", ".join(states) if len(states) == 1 else "every area"
            line = f"{inv.source}: containing {label}: {line}"
            if line not in problems:
                problems.append(line)
    return problems


def file_problems(plans: Iterable[Path], incidents: Iterable[Path]) -> tuple[list[str], list[Vector]]:
    """Plans and incident files, each loaded as ``remediate`` and ``incident open --file`` load them;
    returns the problems and the vectors of the incident files that load."""
    problems: list[str] = []
    vectors: list[Vector] = []
    for path in plans:
        try:
            plan = plan_from_file(path)
        except UserError as exc:
            problems += exc.problems
            continue
        if not plan.validated:
            problems.append(f"{path}: not validated: set validated_by and validated_at before remediating")
    for path in incidents:
        try:
            vectors += spec_from_file(path).vectors
        except UserError as exc:
            problems += exc.problems
    return problems, vectors
