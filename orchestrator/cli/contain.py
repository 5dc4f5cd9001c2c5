"""irm contain, exclude, unlock: containment of an area and the operator's decisions around it."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

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
    complete_host,
    existing_journal,
    hold_sessions,
    load,
    source_specs,
    stage_runner,
)
from orchestrator.core.errors import (
    Declined,
    HostFailures,
    HostsUnreached,
    SpreadNotStopped,
    UserError,
)
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator
from orchestrator.core.safetext import check_text


def show_diffs(title: str, result: Any) -> None:
    """Every host's diff in a check-mode run: its live table against the planned one."""
    for host, hr in sorted(result.hosts.items()):
        for d in hr.diffs:
            before, after = d.get("before", ""), d.get("after", "")
            if not isinstance(before, str) or not isinstance(after, str) or before == after:
                continue
            lines = difflib.unified_diff(before.splitlines(), after.splitlines(),
                                         f"{host}:{d.get('before_header', 'live')}",
                                         f"{host}:{d.get('after_header', 'planned')}", lineterm="")
            console.print(f"{title} - {host}", style="bold", markup=False, highlight=False)
            console.print("\n".join(lines), markup=False, highlight=False)


@app.command("contain")
def contain(
    area: Annotated[list[str] | None, typer.Option("--area", autocompletion=complete_area,
                                                   help="Area to contain, as people say it "
                                                   "(subsidiary-x); repeat for several, contained at once.")] = None,
    detected: Annotated[bool, typer.Option("--detected", help="Contain every area with detections in its "
                                           "sources since the incident was opened (with any --area).")] = False,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check mode with diffs: show, change nothing.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="With --dry-run: reach no host; print the plan and "
                                          "every boundary's and host's rendered ruleset, access list or firewall "
                                          "rules, stage by stage.")] = False,
    quiet_window: Annotated[str, typer.Option(help="No new detection for this long means the spread stopped, "
                                              "e.g. 30s, 2m (a bare number is seconds).")] = "30s",
    max_wait: Annotated[str, typer.Option(help="Give up waiting for the spread to stop after this long, e.g. "
                                          "15m.")] = "15m",
    confirm_timeout: ConfirmTimeoutOpt = 60,
    no_loop: Annotated[bool, typer.Option("--no-loop", help="Skip the sub-area monitoring loop.")] = False,
    boundary_sensors: Annotated[bool, typer.Option(
        "--boundary-sensors/--no-boundary-sensors", help="In the sub-area loop, read the drop counters of the "
        "gateways and area hosts live every few seconds: a sub-area whose worm irm's rules drop is quarantined like "
        "a detected one.")] = True,
    source: SourceOpt = None,
    from_soc: FromSocOpt = False,
    take_over: Annotated[bool, typer.Option("--take-over", help="Replace the live irm tables even where they "
                                            "are not what this journal last recorded (another journal's, or a "
                                            "lost journal): no compare-and-swap. Journaled.")] = False,
    ios_play: IosPlayOpt = False,
    warm: Annotated[bool, typer.Option("--warm/--no-warm", help="Change the Linux boundaries and area hosts over "
                                       "SSH without starting a play once their options are resolved (one play, "
                                       "run in the background while the first stages cut); --no-warm: every "
                                       "stage is a play.")] = True,
) -> None:
    """Contain one or more areas: Internet cut, isolation, vectors and removable storage, mobile, then the
    sub-area loop; with several areas, every first cut comes before any other work.

    Example: irm contain --area subsidiary-x --dry-run
    """
    from orchestrator.cli.live import ContainLive
    from orchestrator.containment.phase import Containment, ContainRequest
    from orchestrator.containment.table import SUBAREA_LOOP
    from orchestrator.identification.sources import Sources
    from orchestrator.recovery.phase import parse_duration

    if not area and not detected:
        raise UserError("irm contain: give --area AREA (repeat for several) or --detected")
    if offline and not dry_run:
        raise UserError("irm contain: --offline goes with --dry-run (a containment that reaches no host is a plan)")
    quiet = parse_duration(quiet_window, "--quiet-window")
    wait = parse_duration(max_wait, "--max-wait", 1.0)
    specs = source_specs(source)
    inv = load(inventory, from_soc=from_soc)
    for name in area or []:
        inv.area(name)
    with Journal(existing_journal(journal)) as j, \
            stage_runner(inv, inventory, ios_play or dry_run, warm=warm and not dry_run) as run:
        names = chosen_areas(inv, j, area, detected, incident_id, specs, "contain")
        if not names:
            console.print("no area has detections in its sources: nothing to contain")
            return
        req = ContainRequest(inventory=inventory, areas=names, operator=default_operator(operator),
                             incident_id=incident_id, dry_run=dry_run, confirm_timeout=confirm_timeout,
                             quiet_window=quiet, max_wait=wait, loop=not no_loop, take_over=take_over)
        job = Containment(req, inv, j, Sources(inv, names, specs), run=run)
        if boundary_sensors and not no_loop and not dry_run:
            from orchestrator.core import routing
            from orchestrator.identification.boundary import BoundarySensor, counter_reader

            job.sensor = BoundarySensor(inv, [h for a in job.areas for h in (a.gateway, *a.hosts)],
                                        counter_reader(inv, inventory, routing.route(inv)),
                                        lambda: job.applier.planned(job.applier.states()))
        job.preflight(reach_nodes=not offline)
        if not dry_run:
            hold_sessions(run, inv, [*([inv.edge.name] if inv.edge else []), *(a.gateway for a in job.areas)],
                          [h for a in job.areas for h in a.hosts])
        console.print(Text.assemble(("containment plan", "bold"), " for ", ("area" if len(names) == 1 else "areas"),
                                    " ", (", ".join(names), "bold"),
                                    f" (incident {job.incident.id}: {job.incident.spec.worm})",
                                    (" DRY RUN" if dry_run else "", "yellow")))
        for a in job.areas:
            console.print(f"  {a.name}: {len(a.hosts)} hosts ({', '.join(a.hosts)})")
        for s in job.stages():
            console.print(f"  {s.label}: {s.summary}")
        loop = SUBAREA_LOOP
        console.print(f"  {loop.number}. {loop.name}: skipped (--no-loop): no sub-area is watched or quarantined"
                      if no_loop else f"  {loop.number}. {loop.name}: quarantine every sub-area that shows "
                      f"detections" + (" or whose worm irm's rules drop" if boundary_sensors else "")
                      + f", until none for {quiet:.0f}s")
        for a in job.areas:
            for flow in a.critical_flows:
                console.print(f"  kept open ({a.name}): {flow.name} {','.join(flow.sources)} -> "
                              f"{','.join(flow.destinations)} {flow.protocol}/{','.join(map(str, flow.ports))} "
                              f"(owner {flow.owner}, validated by {flow.validated_by})")
        if offline:
            _offline(job)
            return
        if not yes and not dry_run and not typer.confirm(f"Apply containment to {', '.join(names)}?", default=False):
            console.print("nothing applied")
            raise Declined()
        with ContainLive(console, f"containment of {', '.join(names)}") as live, \
                board_feed(job.events, j.path, f"irm contain --area {' --area '.join(names)}"):
            job.events.subscribe(live)
            job.events.subscribe(notice.shown)
            try:
                reports = job.run()
            finally:
                notice.faults(job.events)
    if dry_run:
        for report in reports:
            for stage in report.stages:
                show_diffs(stage.name, stage.result)
        would = {h for r in reports for h in r.changed_hosts}
        console.print(f"dry run: {len(would)} host(s) would change; nothing was applied")
        return
    for r in reports:
        changed = sorted(r.changed_hosts)
        console.print(f"{r.area}: first cut after {r.first_cut_seconds or 0:.1f}s; containment "
                      f"{r.total_seconds:.1f}s; {'no change' if not changed else f'{len(changed)} host(s) changed'}; "
                      f"quarantined: {', '.join(r.quarantined) or 'none'}", markup=False, highlight=False)
        for host, why in sorted(r.host_failures.items()):
            err_console.print(f"{host}: host-level rules NOT in place: {why}", markup=False, highlight=False)
        if r.unreachable:
            err_console.print(f"not reached, protected by the boundary only: {', '.join(r.unreachable)} "
                              "(re-run 'irm contain' once they answer, or 'irm exclude HOST --reason TEXT')",
                              markup=False, highlight=False)
    if any(r.host_failures for r in reports):
        raise HostFailures()
    if any(r.spread_stopped is False for r in reports):
        err_console.print(f"the spread has NOT stopped within {wait:.0f}s: detections keep coming")
        raise SpreadNotStopped()
    if reports and all(r.spread_stopped for r in reports):
        console.print("the spread has stopped", style="bold green")
    if any(r.unreachable for r in reports):
        raise HostsUnreached()


def _offline(job: Any) -> None:
    from orchestrator.core.render import rendered

    for label, summary, policies in job.offline():
        console.print(f"{label}: {summary}", style="bold", markup=False, highlight=False)
        for host, policy in policies.items():
            console.print(f"--- {host}: {policy.label} (fingerprint {policy.fingerprint[:16]})", markup=False,
                          highlight=False)
            console.print(rendered(job.inv, host, policy), markup=False, highlight=False, end="", soft_wrap=True)
    console.print("dry run offline: no host was reached, nothing was applied or journaled")


@app.command("exclude")
def exclude(
    host: Annotated[str, typer.Argument(autocompletion=complete_host,
                                        help="Area host that cannot be reached or verified (off, lost, destroyed).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (journaled, shown in status and the report).")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Record an operator decision: this host is left out of recovery's verification (it stays blocked).

    Example: irm exclude x-lt2 --reason 'laptop lost, reported to the police'
    """
    inv = load(inventory)
    known = inv.hosts.get(host)
    if known is None or known.kind != "area":
        raise UserError(f"'{host}' is not an area host of {inventory}")
    why = check_text(reason, "exclude: --reason", limit=2000)
    by = default_operator(operator)
    with Journal(existing_journal(journal)) as j:
        inc = j.incidents.open_for(incident_id)
        j.hosts.exclude(inc.id, known.area, host, why, by)
    console.print(f"{host} excluded from incident {inc.id}: {why}", markup=False, highlight=False)


@app.command("unlock")
def unlock(
    lock: Annotated[str, typer.Argument(help="An area name, or '*boundaries' for the shared-boundaries lock.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the holder is known to be gone (journaled).")],
    journal: JournalOpt = Path(DEFAULT_PATH),
    operator: OperatorOpt = None,
) -> None:
    """Release a lock whose holder is gone for good (e.g. on another machine); journaled.

    Example: irm unlock subsidiary-x --reason 'the SOC machine that held it crashed'
    """
    why = check_text(reason, "unlock: --reason", limit=2000)
    by = default_operator(operator)
    with Journal(existing_journal(journal)) as j:
        row = j.locks.unlock(lock, why, by)
    console.print(f"released {lock} (was held by pid {row['pid']} on {row['hostname']}, operator {row['operator']})",
                  markup=False, highlight=False)
