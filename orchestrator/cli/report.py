"""irm note, action, report: the aftermath (the crisis cell's notes and actions, the report)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from orchestrator.cli.app import action_app, app, console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    IncidentOpt,
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
from orchestrator.core.safefile import write_files
from orchestrator.core.safetext import check_text

_REACT_RE = re.compile(r"^RA\d{4}$")


def _redacted(text: str, inventory: Path) -> str:
    """The journal never holds a secret: vault values of the inventory typed into a note are masked."""
    from orchestrator.core.inventory.load import vault_values

    for secret in vault_values(inventory):
        text = text.replace(secret, "[REDACTED]")
    return text


@app.command("note")
def note(
    text: Annotated[str, typer.Argument(help="What the crisis cell wants in the report.")],
    operator: OperatorOpt = None,
    kind: Annotated[Literal["note", "right", "wrong"], typer.Option(help="What went right, wrong, or a note.")]
    = "note",
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
) -> None:
    """Add a note of the crisis cell to the incident (shown in the report beside the journal's facts).

    Example: irm note 'the ERP owner was reached in 10 minutes' --kind right
    """
    text = check_text(text, "note: the text", limit=4000, multiline=True)
    by = default_operator(operator)
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.open_for(incident_id)
        j.decisions.add_note(inc.id, _redacted(text, inventory), kind, by)
    console.print(f"incident {inc.id}: note by {by} recorded")


@action_app.command("add")
def action_add(
    text: Annotated[str, typer.Argument(help="The action item.")],
    owner: Annotated[str, typer.Option("--owner", help="Who carries it out.")],
    react: Annotated[str | None, typer.Option("--react", help="Its RE&CT response action id, e.g. RA6002.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="Due date, YYYY-MM-DD.")] = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Add an action item to improve the process (shown in the report).

    Example: irm action add 'patch the gold image' --owner it-ops --due 2026-12-31
    """
    text = check_text(text, "action add: the text", limit=2000, multiline=True)
    owner = check_text(owner, "action add: --owner", limit=200)
    by = default_operator(operator)
    if react is not None and not _REACT_RE.match(react):
        raise UserError(f"action add: --react '{react}' is not an RE&CT response action id (RA followed by 4 digits)")
    if due is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", due):
        raise UserError(f"action add: --due '{due}' is not a date (YYYY-MM-DD)")
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.open_for(incident_id)
        j.decisions.add_action(inc.id, _redacted(text, inventory), owner, react, due, by)
    console.print(f"incident {inc.id}: action added for {owner}")


@action_app.command("list")
def action_list(journal: JournalOpt = Path(DEFAULT_PATH), incident_id: IncidentOpt = None,
                as_json: JsonOpt = False) -> None:
    """List the action items (--json: [{id, text, owner, react, due}]).

    Example: irm action list --json
    """
    if no_incident_yet(journal, "[]" if as_json else None):
        return
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.open_for(incident_id)
        actions = j.decisions.actions(inc.id)
    if as_json:
        print(json.dumps([{k: a[k] for k in ("id", "text", "owner", "react", "due")} for a in actions], indent=1))
        return
    table = Table(title=f"actions of incident {inc.id}")
    for col in ("id", "action", "owner", "RE&CT", "due"):
        table.add_column(col)
    for a in actions:
        table.add_row(str(a["id"]), a["text"], a["owner"], a["react"] or "", a["due"] or "")
    console.print(table)


@app.command("report")
def report(
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md, report.html and report.json.")]
    = Path("irm-report"),
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
) -> None:
    """Write the crisis report from the journal: Markdown, a self-contained HTML page, JSON.

    Example: irm report --out irm-report
    """
    from orchestrator.aftermath import report as rep
    from orchestrator.core.inventory.load import vault_values

    if no_incident_yet(journal):
        return
    inv = load(inventory)
    with Journal(existing_journal(journal)) as j:
        if not j.incidents.all():
            raise UserError(f"no incident in journal {journal}: nothing to report")
        r = rep.Report(inv, j, incident_id, secrets=vault_values(inventory))
        data = r.data()
    write_files(out, {"report.json": data.model_dump_json(indent=1) + "\n", "report.md": rep.markdown(data),
                      "report.html": rep.html_page(data)}, "report")
    console.print(f"crisis report of incident {data.incident.id} in {out}/ (report.md, report.html, "
                  f"report.json): {len(data.timeline)} events, cost {data.cost.total:,.2f} {data.cost.currency}")
