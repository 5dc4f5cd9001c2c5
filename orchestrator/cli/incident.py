"""irm incident open / list: the worm and its vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli import notice
from orchestrator.cli.app import console, err_console, incident_app
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    InventoryOpt,
    JournalOpt,
    JsonOpt,
    OperatorOpt,
    existing_journal,
    load,
    no_incident_yet,
)
from orchestrator.core.errors import UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator


@incident_app.command("open")
def incident_open(
    worm: Annotated[str | None, typer.Option(help="Worm name.")] = None,
    vector: Annotated[list[str] | None, typer.Option(help="Propagation vector, tcp/PORT or udp/PORT (repeat).")] = None,
    signature: Annotated[list[str] | None, typer.Option(help="Known AV/IDS signature (repeat).")] = None,
    reference: Annotated[list[str] | None, typer.Option(help="CVE/KB/bulletin id or URL (repeat).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="YAML file with worm, vectors, signatures, "
                                              "references.")] = None,
    journal: JournalOpt = Path(DEFAULT_PATH),
    operator: OperatorOpt = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Open an incident: record the worm and its propagation vectors, and tell the crisis cell.

    Example: irm incident open --worm WannaCry --vector tcp/445 --reference CVE-2017-0144
    """
    from orchestrator.core import incident, stream
    from orchestrator.identification.announce import announce

    if file is not None and (worm or vector or signature or reference):
        raise UserError("incident open: give either --file or the --worm/--vector/... flags, not both")
    spec = incident.spec_from_file(file) if file else incident.spec_from_flags(
        worm, vector or [], signature or [], reference or [])
    by = default_operator(operator)
    with Journal(journal) as j:
        inc = j.incidents.open(spec, by)
        console.print(f"incident {inc.id} opened: {spec.worm}, vectors {', '.join(map(str, spec.vectors))} "
                      f"(journal {journal})")
        try:
            inv = load(inventory)
        except UserError as exc:  # the incident is open; only the notification cannot be sent
            err_console.print(f"crisis cell NOT told: {exc}")
            return
        announce(inv, j, inc.id, spec, by, stream.EventStream([notice.shown]))


@incident_app.command("list")
def incident_list(journal: JournalOpt = Path(DEFAULT_PATH), as_json: JsonOpt = False) -> None:
    """List incidents.

    Example: irm incident list --json
    """
    if no_incident_yet(journal, "[]" if as_json else None):
        return
    with Journal(existing_journal(journal)) as j:
        incidents = j.incidents.all()
    if as_json:
        print(json.dumps([{"id": i.id, "status": i.status, "opened_at": i.opened_at, "opened_by": i.opened_by,
                           **i.spec.model_dump(mode="json")} for i in incidents], indent=1))
        return
    table = Table(title=f"incidents in {journal}")
    for col in ("id", "status", "worm", "vectors", "opened", "by"):
        table.add_column(col)
    for i in incidents:
        table.add_row(str(i.id), i.status, i.spec.worm, ", ".join(map(str, i.spec.vectors)), i.opened_at[:19],
                      i.opened_by)
    console.print(table)


@incident_app.command("close")
def incident_close(
    incident: Annotated[int, typer.Argument(help="The incident to close.")],
    force: Annotated[bool, typer.Option("--force", help="Close although an area is not recovered.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
    journal: JournalOpt = Path(DEFAULT_PATH),
    operator: OperatorOpt = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Close an incident once every area it contained is recovered; its cuts then no longer count.

    Example: irm incident close 1
    """
    from orchestrator.core.holds import held

    if force and not (reason or "").strip():
        raise UserError("incident close --force: give the reason with --reason TEXT (it is journaled)")
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.get(incident)
        if inc.status != "open":
            raise UserError(f"incident {incident} is {inc.status} already")
        inv = load(inventory)
        holds = held(inv, j, incident)
        if holds and not force:
            raise UserError(f"incident {incident} still holds {'; '.join(f'{a} ({p})' for a, p in holds.items())}: "
                            f"recover it first (irm recover --area AREA), or close with --force --reason TEXT")
        j.incidents.close(incident, default_operator(operator), force, reason if force else None, holds)
    console.print(f"incident {incident} closed" + (f" by force ({reason}); what it held no longer counts: the "
                                                  "next apply on those boundaries drops its cuts unless another "
                                                  "open incident holds them" if holds else ""))
