"""irm status: where every area stands, from the journal (and, with --verify, from the hosts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.cli.app import app, console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    IncidentOpt,
    InventoryOpt,
    JournalOpt,
    JsonOpt,
    existing_journal,
    load,
    no_incident_yet,
)
from orchestrator.core.errors import Drift, HostsUnreached, UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal


@app.command("status")
def status(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    as_json: JsonOpt = False,
    verify: Annotated[bool, typer.Option("--verify", help="Read every boundary's and host's live ruleset and "
                                         "compare it with the journal; exit 1 on drift, 6 if some "
                                         "could not be read.")] = False,
) -> None:
    """Per-area and per-sub-area posture, each stage's state, host failures and infections.

    Example: irm status --verify
    """
    from orchestrator.identification import status as st

    if no_incident_yet(journal, '{"incident": null}' if as_json else None):
        return
    inv = load(inventory, snapshot=not verify)
    with Journal(existing_journal(journal)) as j:
        data = st.gather(inv, j, incident_id)
        checked = st.verify(inv, inventory, j, incident_id) if verify else None
    if as_json:
        print(json.dumps({**data, **({"verify": checked} if checked is not None else {})}, indent=1, default=str))
    else:
        render_status(console, data)
        if checked is not None:
            render_verify(console, checked)
    if checked is not None and checked["drift"]:
        raise Drift()
    if checked is not None and checked["unreachable"]:
        raise HostsUnreached()


def render_status(console: Console, data: dict[str, Any]) -> None:
    """`irm status`: the data ``identification.status.gather`` read, as tables."""
    inc = data["incident"]
    if inc is None:
        raise UserError(f"no incident in journal {data['journal']}: nothing to show yet")
    vectors = ", ".join(f"{v['protocol']}/{v['port']}" for v in inc["vectors"])
    console.print(f"incident {inc['id']} ({inc['status']}): {inc['worm']}, vectors {vectors}, opened "
                  f"{inc['opened_at'][:19]} by {inc['opened_by']}")
    for other in data.get("open_incidents", []):
        if other["id"] != inc["id"]:
            holds = "; ".join(f"{a} {p}" for a, p in other["holds"].items()) or "nothing contained"
            console.print(f"also open: incident {other['id']} ({other['worm']}, vectors {', '.join(other['vectors'])}):"
                          f" {holds}", markup=False, highlight=False)
    for host, count in sorted(data.get("skipped_log_lines", {}).items()):
        console.print(f"{host}: {count} line(s) of its detection log skipped (not a detection irm can read)")
    for problem in data.get("source_problems", []):
        console.print(f"detection source: {problem}", style="red", markup=False, highlight=False)
    watch = data.get("watch")
    if watch:
        acted = "; ".join(f"{a['time'][11:19]} {', '.join(a['areas'])}{' (dry run)' if a['dry_run'] else ''}"
                          for a in watch["actions"]) or "nothing yet"
        state = f"PAUSED ({watch['paused']})" if watch["paused"] else "acting"
        console.print(f"irm watch: policy {watch['policy']} (signed by {', '.join(watch['signers'])}), started "
                      f"{watch['started_at'][:19]}, {state}; automatic containment: {acted}", markup=False,
                      highlight=False)
    for lock in data.get("locks", []):
        console.print(f"lock {lock['area']}: held by pid {lock['pid']} on {lock['hostname']} ({lock['operator']}, "
                      f"since {lock['since'][:19]})", markup=False, highlight=False)
    for name, area in data["areas"].items():
        table = Table(title=f"area {name}: {area['posture']}"
                      f"{', vectors blocked' if area['vectors_blocked'] else ''}"
                      f"{', mobile blocked' if area['mobile_blocked'] else ''}")
        for col in ("sub-area", "kind", "posture", "detections", "detected hosts"):
            table.add_column(col)
        for seg, s in area["segments"].items():
            table.add_row(seg, s["kind"], s["posture"], str(s["detections"]), ", ".join(s["detected_hosts"]))
        console.print(table)
        for host, u in area["unreachable_hosts"].items():
            console.print(f"  {host}: not reached since {u['since'][:19]} ({u['stage']}): protected by the boundary "
                          "only", markup=False, highlight=False)
        for host, f in area["host_failures"].items():
            console.print(f"  {host}: enforces {f['enforces']}, not the planned {f['planned']}", markup=False,
                          highlight=False)
        for host, e in area["excluded_hosts"].items():
            console.print(f"  {host}: excluded by {e['by']} at {e['at'][:19]}: {e['reason']}", markup=False,
                          highlight=False)
        if area["stages"]:
            stages = Table(title=f"stages of {name}")
            for col in ("stage", "state", "started", "ended", "by", "failed hosts"):
                stages.add_column(col)
            for s in area["stages"]:
                failed = "; ".join(f"{f['host']}: {' | '.join(f['failures'])[:80]}" for f in s["failed_hosts"])
                stages.add_row(f"{s['phase']}/{s['name']}{' (dry run)' if s['dry_run'] else ''}", s["state"],
                               s["started_at"][11:19], (s["ended_at"] or "")[11:19], s["operator"], failed)
            console.print(stages)
        if area["remediation"]:
            rem = Table(title=f"remediation of {name}")
            for col in ("host", "state", "method", "updated", "by", "why"):
                rem.add_column(col)
            for host, r in area["remediation"].items():
                why = r["detail"].get("reasons") or r["detail"].get("tried") or []
                rem.add_row(host, r["state"], r["method"] or "", r["updated_at"][11:19], r["updated_by"],
                            " | ".join(map(str, why))[:100])
            console.print(rem)
        if area["recovery"]:
            rec = Table(title=f"recovery of {name}")
            for col in ("step", "state", "started", "ended", "by", "soak / reason"):
                rec.add_column(col)
            for r in area["recovery"]:
                soak = r["soak"] or {}
                note = r["reason"] or (f"{soak.get('seconds', 0):.0f}s, {len(soak.get('detections', []))} detection(s)"
                                       if soak else "")
                rec.add_row(f"{r['number']}. {r['step']}", r["state"], r["started_at"][11:19],
                            (r["ended_at"] or "")[11:19], r["operator"], note[:100])
            console.print(rec)


def render_verify(console: Console, result: dict[str, Any]) -> None:
    console.print(f"verified {len(result['checked'])} live ruleset(s) against the journal (incident "
                  f"{result['incident']})", markup=False, highlight=False)
    for host, d in result["drift"].items():
        console.print(f"DRIFT {host}: live {d['live']}, the journal says {d['journal']} ({d['label']})",
                      markup=False, highlight=False)
        for difference in d.get("differences", []):
            console.print(f"  {host}: {difference}", markup=False, highlight=False)
    if result["unreachable"]:
        console.print(f"NOT VERIFIED (no answer): {', '.join(result['unreachable'])}", markup=False, highlight=False)
    for host, why in result.get("read_errors", {}).items():
        console.print(f"  {host}: {why}", markup=False, highlight=False)
    if not result["drift"] and not result["unreachable"]:
        console.print("every live ruleset is the one the journal says")
    drops = result.get("boundary_drops") or {}
    if drops:
        console.print("worm attempts the boundaries dropped (since each table was loaded):", markup=False,
                      highlight=False)
        for segment, d in drops.items():
            where = ", ".join(f"{h} {n}" for h, n in d["at"].items() if n)
            console.print(f"  {segment}: {d['packets']} attempt(s)" + (f" ({where})" if where else ""),
                          markup=False, highlight=False)
