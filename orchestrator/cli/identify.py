"""irm identify: the detection sources turned into a perimeter, its business impact and the next commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli.app import app, console, err_console
from orchestrator.cli.options import DEFAULT_INVENTORY, InventoryOpt, JournalOpt, JsonOpt, SourceOpt, load, source_specs
from orchestrator.core.errors import CheckFailed
from orchestrator.core.journal import DEFAULT_PATH, Journal

if TYPE_CHECKING:
    from orchestrator.identification.identify import Identification
    from orchestrator.identification.sources import SourceHealth


@app.command("identify")
def identify(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    source: SourceOpt = None,
    since: Annotated[str | None, typer.Option(help="Look this far back, e.g. 30m, 24h (default: from 24h before "
                                               "the open incident, else the last 24h).")] = None,
    threshold: Annotated[int | None, typer.Option(help="Detections that make a sub-area infected (default: the "
                                                  "inventory's irm_detection_threshold).", min=1,
                                                  max=1_000_000)] = None,
    within: Annotated[str | None, typer.Option(help="...within this long, e.g. 10m (default: the inventory's).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Read the detection sources and show the perimeter (areas, sub-areas, hosts, first seen, patient zero),
    the business impact (critical flows, owners, downtime cost) and the exact commands to run next.
    Exit 1 when a source cannot be read (the perimeter may be incomplete).

    Example: irm identify --source suricata:/var/log/suricata/eve.json --since 2h
    """
    from orchestrator.core.detection import LOOKBACK, watch_start
    from orchestrator.identification.identify import identify as run
    from orchestrator.identification.sources import Sources
    from orchestrator.recovery.phase import parse_duration

    specs = source_specs(source)
    inv = load(inventory)
    window = parse_duration(within, "--within", 1.0) if within else None
    limits = inv.detection_threshold.model_copy(update={
        k: v for k, v in (("detections", threshold), ("within", window)) if v is not None})
    postures: dict[str, str] = {}
    incident = None
    if journal.exists():
        with Journal(journal) as j:
            open_ = [i for i in j.incidents.all() if i.status == "open"]
            incident = open_[-1] if open_ else None
            postures = j.stages.postures(incident.id) if incident else {}
    start = datetime.now(UTC) - timedelta(seconds=parse_duration(since, "--since", 1.0, 366 * 86400.0)) if since else \
        watch_start(incident.opened_at) if incident else datetime.now(UTC) - LOOKBACK
    sources = Sources(inv, specs=specs)
    detections = sources.detections(start)
    health = sources.health()
    unmapped = {h.label: sum(h.unmapped.values()) for h in health if h.unmapped}
    result = run(inv, detections, start, limits, postures, unmapped, incident is not None,
                 None if str(inventory) == DEFAULT_INVENTORY else str(inventory), sources=list(source or []))
    unreadable = [h.label for h in health if not h.readable]
    if as_json:
        data = result.to_json()
        data["sources"] = [{"source": h.label, "readable": h.readable, "newest": h.newest.isoformat() if h.newest
                            else None, "skipped_lines": h.skipped, "unmapped": h.unmapped} for h in health]
        data["incident"] = incident.id if incident else None
        print(json.dumps(data, indent=1))
    else:
        _show(result, health, incident.id if incident else None, inv.costs.currency)
    if unreadable:
        err_console.print(f"cannot read {', '.join(unreadable)}: the perimeter may be incomplete")
        raise CheckFailed()


def _show(result: Identification, health: list[SourceHealth], incident: int | None, currency: str) -> None:
    for h in health:
        state = "cannot be read" if not h.readable else \
            f"newest record {h.newest.isoformat(timespec='seconds')}" if h.newest else "readable, no record"
        extra = f"; {h.skipped} line(s) not understood" if h.skipped else ""
        extra += f"; {sum(h.unmapped.values())} from addresses/names not in the inventory " \
                 f"({', '.join(sorted(h.unmapped)[:5])})" if h.unmapped else ""
        console.print(f"source {h.label}: {state}{extra}")
    when = result.since.isoformat(timespec="seconds")
    if not result.areas and not result.outside:
        console.print(f"no detection since {when}: no perimeter")
        return
    th = result.threshold
    console.print(Text.assemble(("perimeter", "bold"), f" (detections since {when}; a sub-area counts at "
                                f"{th.detections} detection(s) within {th.within:.0f}s): ",
                                (", ".join(result.perimeter) or "none over the threshold", "bold red")))
    if result.patient_zero and result.first_seen:
        first = result.first_seen.isoformat(timespec="seconds")
        console.print(f"patient zero: {result.patient_zero}, first seen {first}; "
                      f"signatures: {', '.join(result.signatures[:3])}"
                      + (f"; vectors seen: {', '.join(result.vectors)}" if result.vectors else ""))
    table = Table(title="detections by area and sub-area")
    for col in ("area", "now", "sub-area", "kind", "detections", "peak", "first seen", "hosts"):
        table.add_column(col)
    for a in result.areas:
        for s in a.segments:
            table.add_row(a.area, a.posture, s.segment.split("/", 1)[1], s.kind, str(s.detections),
                          f"{s.peak}{' >= ' if s.over_threshold else ' < '}{th.detections}",
                          s.first_seen.isoformat(timespec="seconds"), ", ".join(h.host for h in s.hosts))
    console.print(table)
    if result.outside:
        console.print("detected outside every area: " + ", ".join(h.host for h in result.outside))
    for f in result.impact:
        console.print(f"impact: {f.area} flow '{f.flow}' (owner {f.owner})"
                      + (f" touches {', '.join(f.touches)}" if f.touches else " is in the perimeter")
                      + ("; validated, containment keeps it open" if f.kept_open else
                         "; not validated: containment cuts it"))
    cost = result.cost_per_hour()
    areas = [a for a in result.areas if a.over_threshold]
    console.print(f"downtime cost of the perimeter: {cost:.0f} {currency} per hour" if cost is not None else
                  "downtime cost of the perimeter: not declared for " +
                  ", ".join(a.area for a in areas if a.downtime_cost_per_hour is None) if areas else
                  "downtime cost of the perimeter: nothing over the threshold")
    if incident is not None:
        console.print(f"incident {incident} is open")
    for cmd in result.next_commands:
        console.print(f"next: {cmd}", style="bold")
    if not result.next_commands and result.perimeter:
        console.print("every area of the perimeter is already contained: next, 'irm status' and remediation")
