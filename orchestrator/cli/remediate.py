"""irm remediate [mark-manual]: remediation of a contained area, canaries first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli.app import console, remediate_app
from orchestrator.cli.notice import tell
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    FromSocOpt,
    IncidentOpt,
    InventoryOpt,
    JournalOpt,
    OperatorOpt,
    complete_area,
    complete_host,
    existing_journal,
    load,
)
from orchestrator.core.errors import CanaryFailed, Declined, RemediationIncomplete, RunnerError, UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator
from orchestrator.core.safetext import check_text


def _table(title: str, states: dict[str, str], reasons: dict[str, list[str]]) -> Table:
    table = Table(title=title)
    for col in ("host", "state", "why"):
        table.add_column(col)
    for host, state in sorted(states.items()):
        style = {"verified": "green", "manual-needed": "yellow", "failed": "bold red"}.get(state, "")
        table.add_row(host, Text(state, style=style), " | ".join(reasons.get(host, []))[:160])
    return table


@remediate_app.callback(invoke_without_command=True)
def remediate(
    ctx: typer.Context,
    area: Annotated[str | None, typer.Option("--area", autocompletion=complete_area,
                                             help="The contained area to remediate.")] = None,
    plan: Annotated[Path | None, typer.Option("--plan", help="The remediation plan (YAML); default: the plan "
                                              "stored by the last run for this area.")] = None,
    canary: Annotated[str | None, typer.Option("--canary", help="Canary hosts, comma-separated (default: the "
                                               "first host of each host type).")] = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    from_soc: FromSocOpt = False,
) -> None:
    """Run the plan on the canaries, verify them, then deploy to the rest of the area and verify.

    Example: irm remediate --area subsidiary-x --plan plans/lab-worm.yml --canary x-ws11
    """
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.cli.live import RemediationLive
    from orchestrator.remediation.phase import RemediateRequest, Remediation

    if area is None:
        raise UserError("remediate: --area AREA is required (or a subcommand: mark-manual)")
    inv = load(inventory, from_soc=from_soc)
    inv.area(area)
    canaries = [c.strip() for c in canary.split(",") if c.strip()] if canary is not None else None
    req = RemediateRequest(inventory=inventory, area=area, operator=default_operator(operator),
                           plan_path=plan, incident_id=incident_id, canaries=canaries)
    with Journal(existing_journal(journal)) as j:
        job = Remediation(req, inv, j)
        chosen = job.preflight()
        p = job.plan
        console.print(Text.assemble(("remediation plan", "bold"), f" '{p.name}' for area ", (job.area.name, "bold"),
                                    f" (incident {job.incident.id}: {job.incident.spec.worm}), validated by "
                                    f"{p.validated_by} at {p.validated_at}"))
        for os_name in sorted({h.os for h in job.hosts}):
            hosts = [h.name for h in job.hosts if h.os == os_name]
            console.print(f"  {os_name}: {len(hosts)} host(s), methods {' -> '.join(p.methods_for(os_name))}, "
                          f"needs {', '.join(sorted(p.needs(os_name)))}")
        console.print(f"  canaries first: {', '.join(chosen)}; the rest only if every canary verifies")
        if not yes and not typer.confirm(f"Remediate {job.area.name}?", default=False):
            console.print("nothing applied")
            raise Declined()
        with RemediationLive(console, f"remediation of {job.area.name}") as live:
            job.ui = live
            try:
                report = job.run()
            except (CanaryFailed, RemediationIncomplete, RunnerError) as exc:  # an outcome the cell must hear of
                tell(inv, j, job.incident.id, "remediation stopped", [area], [str(exc)],
                     "manual remediation of the hosts it names, or a corrected plan", req.operator)
                raise
            finally:
                if job.report is not None:
                    console.print(_table(f"remediation of {job.area.name}", job.report.states, job.report.reasons))
        verified = report.hosts_in("verified")
        tell(inv, j, job.incident.id, "remediation done", [area],
             [f"{len(verified)} host(s) remediated and verified with plan '{p.name}'"],
             f"management approval to reconnect {area} ('irm approve --area {area}', then 'irm recover')",
             req.operator)
    console.print(f"{len(report.hosts_in('verified'))} host(s) remediated and verified", style="bold green")


@remediate_app.command("mark-manual")
def mark_manual(
    host: Annotated[str, typer.Argument(autocompletion=complete_host,
                                        help="The host a technician remediated by hand.")],
    by: Annotated[str, typer.Option("--by", help="Who did the work (journaled).")],
    area: Annotated[str | None, typer.Option("--area", autocompletion=complete_area,
                                             help="The host's area (default: from the inventory).")] = None,
    note: Annotated[str, typer.Option("--note", help="What was done.")] = "",
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Record a manual remediation, then verify the host; it counts only once verification passes.

    Example: irm remediate mark-manual x-ws13 --by 'technician on site'
    """
    from orchestrator.remediation.phase import RemediateRequest, Remediation

    by = check_text(by, "mark-manual: --by", limit=200)
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
