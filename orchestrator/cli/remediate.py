"""irm remediate and irm mark-manual: remediation of contained areas, canaries first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.board.feed import attached as board_feed
from orchestrator.cli import notice
from orchestrator.cli.app import app, console, err_console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    FromSocOpt,
    IncidentOpt,
    InventoryOpt,
    JournalOpt,
    OperatorOpt,
    SourceOpt,
    chosen_areas,
    complete_area,
    complete_host,
    existing_journal,
    load,
    source_specs,
)
from orchestrator.core.errors import Declined, IrmError, UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator
from orchestrator.core.safetext import check_text

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory
    from orchestrator.remediation.phase import Remediation, RemediationPreview


def _table(title: str, states: dict[str, str], reasons: dict[str, list[str]]) -> Table:
    table = Table(title=title)
    for col in ("host", "state", "why"):
        table.add_column(col)
    for host, state in sorted(states.items()):
        style = {"verified": "green", "manual-needed": "yellow", "failed": "bold red"}.get(state, "")
        table.add_row(host, Text(state, style=style), " | ".join(reasons.get(host, []))[:160])
    return table


@app.command("remediate")
def remediate(
    area: Annotated[list[str] | None, typer.Option("--area", autocompletion=complete_area,
                                                   help="A contained area to remediate; repeat for several, "
                                                   "remediated area after area.")] = None,
    detected: Annotated[bool, typer.Option("--detected", help="Every area with detections in its sources since "
                                           "the incident was opened (with any --area).")] = False,
    plan: Annotated[Path | None, typer.Option("--plan", help="The remediation plan (YAML); default: the plan "
                                              "stored by the last run for each area.")] = None,
    canary: Annotated[str | None, typer.Option("--canary", help="Canary hosts, comma-separated (default: the "
                                               "first host of each host type of each area).")] = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything a run would check, then run every "
                                          "method in check mode on every host and show what it would change; "
                                          "nothing is changed or journaled.")] = False,
    source: SourceOpt = None,
    from_soc: FromSocOpt = False,
) -> None:
    """Run the plan on the canaries, verify them, then deploy to the rest of the area and verify.

    Example: irm remediate --area subsidiary-x --plan plans/lab-worm.yml --canary x-ws11
    """
    from orchestrator.remediation.phase import RemediateRequest, Remediation

    if not area and not detected:
        raise UserError("irm remediate: give --area AREA (repeat for several) or --detected")
    specs = source_specs(source)
    inv = load(inventory, from_soc=from_soc)
    for name in area or []:
        inv.area(name)
    canaries = [c.strip() for c in canary.split(",") if c.strip()] if canary is not None else None
    with Journal(existing_journal(journal)) as j:
        names = chosen_areas(inv, j, area, detected, incident_id, specs, "remediate")
        if not names:
            console.print("no area has detections in its sources: nothing to remediate")
            return
        stray = [c for c in canaries or [] if not any(c in inv.area(n).hosts for n in names)]
        if stray:
            where = ", ".join(f"'{n}'" for n in names)
            raise UserError(f"--canary: {', '.join(stray)} not in area{'s' if len(names) > 1 else ''} {where}",
                            "nothing was applied")
        for i, name in enumerate(names):
            mine = [c for c in canaries if c in inv.area(name).hosts] if canaries is not None else None
            req = RemediateRequest(inventory=inventory, area=name, operator=default_operator(operator),
                                   plan_path=plan, incident_id=incident_id, canaries=mine or None)
            job = Remediation(req, inv, j)
            try:
                if dry_run:
                    _preview(job)
                else:
                    _remediate(job, inv, j, yes)
            except IrmError:
                if names[i + 1:]:
                    err_console.print(f"not started: {', '.join(names[i + 1:])}", markup=False, highlight=False)
                raise


def _plan_lines(job: Remediation, chosen: list[str], dry_run: bool) -> None:
    p = job.plan
    console.print(Text.assemble(("remediation plan", "bold"), f" '{p.name}' for area ", (job.area.name, "bold"),
                                f" (incident {job.incident.id}: {job.incident.spec.worm}), validated by "
                                f"{p.validated_by} at {p.validated_at}", (" DRY RUN" if dry_run else "", "yellow")))
    for os_name in sorted({h.os for h in job.hosts}):
        hosts = [h.name for h in job.hosts if h.os == os_name]
        console.print(f"  {os_name}: {len(hosts)} host(s), methods {' -> '.join(p.methods_for(os_name))}, "
                      f"needs {', '.join(sorted(p.needs(os_name)))}", markup=False, highlight=False)
    console.print(f"  canaries first: {', '.join(chosen)}; the rest only if every canary verifies")


def _remediate(job: Remediation, inv: Inventory, j: Journal, yes: bool) -> None:
    from orchestrator.cli.live import RemediationLive

    chosen = job.preflight()
    _plan_lines(job, chosen, dry_run=False)
    area = job.area.name
    if not yes and not typer.confirm(f"Remediate {area}?", default=False):
        console.print("nothing applied")
        raise Declined()
    with RemediationLive(console, f"remediation of {area}") as live, \
            board_feed(job.events, j.path, f"irm remediate --area {area}"):
        job.events.subscribe(live)
        job.events.subscribe(notice.shown)
        try:
            report = job.run()
        finally:
            notice.faults(job.events)
            if job.report is not None:
                console.print(_table(f"remediation of {area}", job.report.states, job.report.reasons))
    verified = report.hosts_in("verified")
    console.print(f"{area}: {len(verified)} host(s) remediated and verified", style="bold green")


def _preview(job: Remediation) -> RemediationPreview:
    from orchestrator.cli.live import RemediationLive

    chosen = job.preflight()
    _plan_lines(job, chosen, dry_run=True)
    with RemediationLive(console, f"remediation of {job.area.name} (dry run)") as live:
        job.events.subscribe(live)
        preview = job.preview()
    if preview.unreachable:
        console.print(f"  not reachable, would be left for a re-run: {', '.join(preview.unreachable)}")
    for step in preview.steps:
        if step.name == "verify":
            continue
        console.print(f"{step.name} (check mode) on {', '.join(step.hosts)}", style="bold")
        for host, hr in sorted(step.result.hosts.items()):
            found = hr.facts.get("irm_disinfected")
            detail = "; ".join(f"{k} {', '.join(v)}" for k, v in found.items() if v) if isinstance(found, dict) else ""
            said = "; ".join(hr.would) or "no change"
            failed = f"; FAILS: {' | '.join(hr.failures)}" if hr.failures else ""
            console.print(f"  {host}: {said}{f' ({detail})' if detail else ''}{failed}", markup=False,
                          highlight=False)
    for host, reasons in sorted(preview.verification().items()):
        console.print(f"  verification now, {host}: {' | '.join(reasons) if reasons else 'verifies already'}",
                      markup=False, highlight=False)
    would = preview.would_change()
    console.print(f"dry run: {len(would)} host(s) of {job.area.name} would change; nothing was applied")
    return preview


@app.command("mark-manual")
def mark_manual(
    host: Annotated[str, typer.Argument(autocompletion=complete_host,
                                        help="The host a technician remediated by hand.")],
    technician: Annotated[str, typer.Option("--technician", help="Who did the work (journaled).")],
    area: Annotated[str | None, typer.Option("--area", autocompletion=complete_area,
                                             help="The host's area (default: from the inventory).")] = None,
    note: Annotated[str, typer.Option("--note", help="What was done.")] = "",
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Record a manual remediation, then verify the host; it counts only once verification passes.

    Example: irm mark-manual x-ws13 --technician 'technician on site'
    """
    from orchestrator.remediation.phase import RemediateRequest, Remediation

    by = check_text(technician, "mark-manual: --technician", limit=200)
    note = check_text(note, "mark-manual: --note", limit=2000, multiline=True) if note.strip() else ""
    inv = load(inventory)
    if host not in inv.hosts:
        raise UserError(f"mark-manual: unknown host '{host}' in {inv.source}")
    area = area or inv.hosts[host].area
    if area is None:
        raise UserError(f"mark-manual: host '{host}' is not in any area")
    req = RemediateRequest(inventory=inventory, area=area, operator=default_operator(operator),
                           incident_id=incident_id)
    with Journal(existing_journal(journal)) as j:
        Remediation(req, inv, j).mark_manual(host, by, note)
    console.print(Text.assemble((f"{host} verified", "bold green"), f" after manual remediation by {by}"))
