"""irm approve / irm recover: the signed management approval, then reconnection step by step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from orchestrator.board.feed import attached as board_feed
from orchestrator.cli import notice
from orchestrator.cli.app import app, console, err_console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    ConfirmTimeoutOpt,
    FromSocOpt,
    IncidentOpt,
    InventoryOpt,
    IosPlayOpt,
    JournalOpt,
    OperatorOpt,
    SourceOpt,
    chosen_areas,
    complete_area,
    existing_journal,
    hold_sessions,
    load,
    source_specs,
    stage_runner,
)
from orchestrator.core.errors import CheckFailed, Declined, IrmError, UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator
from orchestrator.core.safetext import check_text
from orchestrator.recovery.table import STEP_CHOICES

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory
    from orchestrator.core.runner import PlaybookRunner
    from orchestrator.recovery.phase import RecoverRequest, Recovery, Step


@app.command("approve")
def approve(
    area: Annotated[str, typer.Option("--area", autocompletion=complete_area,
                                      help="The remediated area whose recovery is approved.")],
    key: Annotated[Path, typer.Option("--key", help="The approver's SSH private key (its public key is listed "
                                      "in the inventory's irm_approvers).")],
    reason: Annotated[str, typer.Option("--reason", help="Why recovery may start.")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Sign the management approval that recovery requires: the incident, the area, its remediation
    state as journaled, the time and the reason, signed with the approver's SSH key (ssh-keygen -Y).

    Example: irm approve --area subsidiary-x --key ~/.ssh/id_ed25519 --reason 'remediation verified'
    """
    from orchestrator.core import stream
    from orchestrator.recovery import approval

    why = check_text(reason, "approve: --reason", limit=500)
    by = default_operator(operator)
    inv = load(inventory)
    inv.area(area)
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.open_for(incident_id)
        signed = approval.approve(inv, j, inc, area, key, why, by, stream.EventStream([notice.shown]))
        console.print(f"incident {inc.id}: recovery of {area} approved by {signed['approver']} ({signed['role']}), "
                      f"signed with {signed['fingerprint']} over remediation state {signed['remediation'][:19]}...: "
                      f"{why}", markup=False, highlight=False)


@app.command("recover")
def recover(
    area: Annotated[list[str] | None, typer.Option("--area", autocompletion=complete_area,
                                                   help="An area to reconnect; repeat for several, reconnected "
                                                   "area after area (each with its approval and prompts).")] = None,
    detected: Annotated[bool, typer.Option("--detected", help="Every area with detections in its sources since "
                                           "the incident was opened (with any --area).")] = False,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before each step (scripted runs).")] = False,
    step: Annotated[bool, typer.Option("--step", help="Perform only the next step, then exit.")] = False,
    only: Annotated[str | None, typer.Option("--only", help="Perform this step only (refused unless it is the "
                                             f"next one): {STEP_CHOICES}.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every precondition, then run each step left in "
                                          "check mode and show the diff of every boundary's and host's table; "
                                          "nothing is changed.")] = False,
    soak: Annotated[str, typer.Option("--soak", help="Monitoring after each step, e.g. 60s, 2m.")] = "60s",
    quiet_window: Annotated[str, typer.Option(help="No detection in the area for this long before starting.")]
    = "60s",
    confirm_timeout: ConfirmTimeoutOpt = 60,
    source: SourceOpt = None,
    from_soc: FromSocOpt = False,
    take_over: Annotated[bool, typer.Option("--take-over", help="Replace the live irm tables even where they "
                                            "are not what this journal last recorded (another journal's, or a "
                                            "lost journal): no compare-and-swap. Journaled.")] = False,
    ios_play: IosPlayOpt = False,
) -> None:
    """Reconnect a contained, remediated area in the IRM order, one confirmed and monitored step at a time.

    Example: irm recover --area subsidiary-x --soak 2m
    """
    from orchestrator.recovery.phase import RecoverRequest, parse_duration

    if not area and not detected:
        raise UserError("irm recover: give --area AREA (repeat for several) or --detected")
    specs = source_specs(source)
    inv = load(inventory, from_soc=from_soc)
    for name in area or []:
        inv.area(name)
    soak_s, quiet = parse_duration(soak, "--soak"), parse_duration(quiet_window, "--quiet-window")
    with Journal(existing_journal(journal)) as j:
        names = chosen_areas(inv, j, area, detected, incident_id, specs, "recover")
        if not names:
            console.print("no area has detections in its sources: nothing to recover")
            return
        refused = []
        for i, name in enumerate(names):
            req = RecoverRequest(inventory=inventory, area=name, operator=default_operator(operator),
                                 incident_id=incident_id, soak=soak_s, quiet_window=quiet, next_only=step, only=only,
                                 confirm_timeout=confirm_timeout, assume_yes=yes, take_over=take_over)
            try:
                if dry_run:
                    refused += _preview(inv, j, req, specs)
                else:
                    with stage_runner(inv, req.inventory, ios_play) as run:
                        _recover(inv, j, req, specs, yes, run)
            except IrmError:
                if names[i + 1:]:
                    err_console.print(f"not started: {', '.join(names[i + 1:])}", markup=False, highlight=False)
                raise
    if refused:  # every area was dry-run; a real run would refuse these
        raise CheckFailed(f"recovery would be refused for {', '.join(refused)}: precondition(s) unmet (above)")


def _job(inv: Inventory, j: Journal, req: RecoverRequest, specs: list[Any],
         confirm: Callable[[Step, list[str]], bool] | None = None,
         run: PlaybookRunner | None = None) -> Recovery:
    from orchestrator.identification.sources import Sources
    from orchestrator.recovery.phase import Recovery

    paths = None
    if inv.lab is not None:
        from orchestrator.lab.traffic import LabPaths

        paths = LabPaths()
    from orchestrator.core import runner

    return Recovery(req, inv, j, Sources(inv, specs=specs), confirm=confirm, paths=paths,
                    run=run or runner.run_playbook)


def _preview(inv: Inventory, j: Journal, req: RecoverRequest, specs: list[Any]) -> list[str]:
    """The dry run of one area; returns [the area] when a real run would refuse it."""
    from orchestrator.cli.contain import show_diffs
    from orchestrator.cli.live import ContainLive

    job = _job(inv, j, req, specs)
    console.print(Text.assemble((f"recovery of {job.area.name}", "bold"), f" (incident {job.incident.id})",
                                (" DRY RUN", "yellow")))
    with ContainLive(console, f"recovery of {job.area.name} (dry run)") as live:
        job.events.subscribe(live)
        preview = job.preview()
    for problem in preview.unmet:
        err_console.print(f"  a run would refuse: {problem}", markup=False, highlight=False)
    if not preview.unmet:
        console.print("  every precondition holds (approval, remediation verified on the hosts, quiet window)")
    for sp in preview.steps:
        console.print(f"{sp.step.label}: {sp.step.title}", style="bold")
        for line in sp.changes:
            console.print(f"  {line}", markup=False, highlight=False)
        if sp.outcome is not None:
            show_diffs(sp.step.label, sp.outcome.result)
    would = sorted({h for sp in preview.steps if sp.outcome is not None for h in sp.outcome.changed})
    console.print(f"dry run: {len(preview.steps)} step(s), {len(would)} boundary(ies) and host(s) would change; "
                  "nothing was applied")
    return [job.area.name] if preview.unmet else []


def _recover(inv: Inventory, j: Journal, req: RecoverRequest, specs: list[Any], yes: bool,
             run: PlaybookRunner) -> None:
    from orchestrator.cli.live import ContainLive

    area = req.area

    def confirm(s: Step, changes: list[str]) -> bool:
        live.live.stop()
        console.print(f"{s.label}: {s.title}", style="bold")
        for line in changes:
            console.print(f"  {line}", markup=False, highlight=False)
        ok = yes or typer.confirm(f"Perform {s.label}?", default=False)
        if ok:
            live.live.start()
        return ok

    job = _job(inv, j, req, specs, confirm, run)
    hold_sessions(run, inv, [*([inv.edge.name] if inv.edge else []), job.area.gateway])
    left = job.remaining()
    done = [s.name for s in job.planned_steps() if s not in left]
    console.print(Text.assemble((f"recovery of {job.area.name}", "bold"), f" (incident {job.incident.id}): "
                                f"done {', '.join(done) or 'nothing yet'}; next "
                                f"{left[0].label if left else 'none'}"))
    with ContainLive(console, f"recovery of {job.area.name}") as live, \
            board_feed(job.events, j.path, f"irm recover --area {job.area.name}"):
        job.events.subscribe(live)
        job.events.subscribe(notice.shown)
        try:
            report = job.run()
        finally:
            notice.faults(job.events)
    if report.declined:
        console.print(f"{report.declined} declined: nothing changed; irm recover --area {area} continues from there")
        raise Declined()
    if report.remaining:
        console.print(f"done: {', '.join(report.done)}; next: {report.remaining[0]} (irm recover --area {area})")
    else:
        console.print(Text.assemble((f"{area} is reconnected", "bold green"), ": every step done and soaked"))
