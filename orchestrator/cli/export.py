"""irm export cacao: the response as an OASIS CACAO v2.0 playbook (the plan, or as run from the journal)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.app import console, export_app
from orchestrator.cli.options import DEFAULT_INVENTORY, IncidentOpt, InventoryOpt, JournalOpt, existing_journal, load
from orchestrator.core.errors import UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal
from orchestrator.core.safefile import write_files


@export_app.command("cacao")
def cacao(
    out: Annotated[Path, typer.Option("--out", help="The file to write (JSON).")] = Path("irm-cacao.json"),
    area: Annotated[list[str] | None, typer.Option(
        "--area", help="Only this area; repeat for several (default: every area of the inventory, or every "
        "area the incident touched with --as-run).")] = None,
    as_run: Annotated[bool, typer.Option(
        "--as-run", help="What the journal says was done (times, outcomes), instead of the plan.")] = False,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
) -> None:
    """Write the response as a CACAO v2.0 playbook, checked against the OASIS schemas before it is written.

    Without --as-run: the plan for the inventory's areas (containment, remediation, approval, recovery, in
    IRM order, the areas in parallel). With --as-run: every stage and approval the journal holds for the
    incident, with their times and outcomes (for the report's annex).

    Example: irm export cacao --as-run --incident 1 --out incident-1.cacao.json
    """
    from orchestrator.aftermath import cacao as cc

    inv = load(inventory)
    areas = list(dict.fromkeys(area or []))
    for name in areas:
        inv.area(name)  # an unknown area is named (UnknownNameError)
    if as_run:
        with Journal(existing_journal(journal)) as j:
            inc = j.incidents.open_for(incident_id) if incident_id is None else j.incidents.get(incident_id)
            doc = cc.as_run(inv, j, inc.id, areas or None)
    else:
        if incident_id is not None and not journal.exists():
            raise UserError(f"export cacao: --incident {incident_id} given but there is no journal at {journal}")
        doc = cc.plan(inv, areas or list(inv.areas), incident_id)
    text = cc.checked(doc)
    write_files(out.parent, {out.name: text}, "export cacao")  # a directory at --out is refused there
    steps = sum(1 for s in doc["workflow"].values() if s["type"] == "action")
    console.print(f"CACAO v2.0 playbook {doc['id']} in {out}: {steps} action steps, "
                  f"{len(doc['target_definitions'])} targets; valid against the OASIS CACAO v2 schemas", soft_wrap=True)
