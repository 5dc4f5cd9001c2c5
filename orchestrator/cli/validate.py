"""irm validate: everything a later command would refuse, checked before any crisis."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli.app import app, console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    InventoryOpt,
    JsonOpt,
    UntrustedOpt,
    load,
)
from orchestrator.core.errors import LabError, UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory


@app.command("validate")
def validate(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    plan: Annotated[list[Path] | None, typer.Option("--plan", help="A remediation plan to check too (repeat).")] = None,
    incident_file: Annotated[list[Path] | None, typer.Option(
        "--incident-file", help="An incident file to check too, and whose vectors the critical flows are checked "
        "against (repeat).")] = None,
    journal: Annotated[Path | None, typer.Option(
        "--journal", envvar="IRM_JOURNAL", help="Check critical flows against this journal's open incident "
        "(default: the machine's journal, when it exists).")] = None,
    policy: Annotated[list[Path] | None, typer.Option(
        "--policy", help="A containment policy (irm watch) to check too: its file, its areas against the "
        "inventory, its signatures and validity (repeat).")] = None,
    untrusted: UntrustedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check everything a later command would refuse: the schema, the chokepoint groups, the lab's
    address space, critical flows against the incident's vectors, the management path under every
    containment, and the plan and incident files given (every problem, one line each).

    Example: irm validate -i inventories/lab --plan plans/lab-worm.yml
    """
    from orchestrator.core.inventory import untrusted as untrusted_inventory
    from orchestrator.preparation import validation

    if untrusted:
        untrusted_inventory.check(inventory)
    problems, vectors = validation.file_problems(plan or [], incident_file or [])
    against = [str(f) for f in incident_file or []]
    path = journal or Path(DEFAULT_PATH)
    given = any(a == "--journal" or a.startswith("--journal=") for a in sys.argv[1:])
    if journal is not None and not journal.exists() and given:  # IRM_JOURNAL before the first incident: none
        raise UserError(f"no journal at {journal} (validate reads it, never creates it)")
    if path.exists():
        with Journal(path) as j:
            open_ = [i for i in j.incidents.all() if i.status == "open"]
        for inc in open_:
            vectors += inc.spec.vectors
            against.append(f"incident {inc.id} of {path}")
    try:
        inv = load(inventory)
    except UserError as exc:
        raise UserError(*exc.problems, *problems) from None
    problems = validation.inventory_problems(inv, list(dict.fromkeys(vectors)), _lab_problems) + problems
    policies = {f: _policy(f, inv, problems) for f in policy or []}
    if as_json:  # {inventory, valid, problems, areas, segments, managed_hosts, checked_against, plans, incident_files}
        print(json.dumps({"inventory": str(inventory), "valid": not problems, "problems": problems,
                          "areas": len(inv.areas), "segments": len(inv.segments),
                          "managed_hosts": len(inv.managed_hosts), "checked_against": against,
                          "plans": [str(f) for f in plan or []],
                          "incident_files": [str(f) for f in incident_file or []],
                          "policies": [str(f) for f in policy or []]}, indent=1))
        if problems:
            raise typer.Exit(2)
        return
    if problems:
        raise UserError(*problems)
    vectors_note = f"; critical flows checked against {', '.join(against)}" if against else ""
    console.print(f"{inventory}: valid ({len(inv.areas)} areas, {len(inv.segments)} segments, "
                  f"{len(inv.managed_hosts)} managed hosts){vectors_note}", soft_wrap=True, highlight=False)
    for f in plan or []:
        console.print(f"{f}: valid plan", soft_wrap=True, highlight=False)
    for f in incident_file or []:
        console.print(f"{f}: valid incident file", soft_wrap=True, highlight=False)
    for f, line in policies.items():
        console.print(f"{f}: {line}", soft_wrap=True, highlight=False, markup=False)


def _policy(path: Path, inv: Inventory, problems: list[str]) -> str:
    """A containment policy as irm watch will check it (its problems appended to ``problems``). Its worst
    case, every area it names cut through its last stage, is within what the inventory check above proves
    keeps management open (every area contained)."""
    from orchestrator.watch import policy as pol

    try:
        chosen, signers, _ = pol.verified(path, inv)
    except UserError as exc:
        problems.extend(exc.problems)
        return "not executable"
    return (f"valid containment policy {chosen.name}, signed by {', '.join(signers)}, until "
            f"{chosen.valid_until.isoformat()}")


def _lab_problems(inv: Inventory) -> list[str]:
    """The lab's addressing, through the same plan ``lab up`` uses (a lab inventory only)."""
    if inv.lab is None:
        return []
    from orchestrator.lab.topology import plan_lab

    try:
        plan_lab(inv)
    except LabError as exc:
        return list(exc.problems)
    return []
