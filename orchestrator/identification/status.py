"""`irm status`: postures, stages, host failures and infections, from the journal and the detection source."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core import checks, ios_readback, mgmt_probe, routing
from orchestrator.core.detection import watch_start
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.holds import held, held_by_others, incident_states, strictest
from orchestrator.core.inventory import Inventory, hosts_by_os
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.posture import (
    AreaState,
    not_as_planned,
    policies,
    table_differences,
    windows_differences,
)
from orchestrator.identification.boundary import boundary_drops


def _chosen(journal: Journal, incident_id: int | None) -> Incident | None:
    """The given incident, else the newest open one, else the newest."""
    if incident_id is not None:
        return journal.incidents.get(incident_id)
    incidents = journal.incidents.all()
    open_ = [i for i in incidents if i.status == "open"]
    return open_[-1] if open_ else (incidents[-1] if incidents else None)


def gather(inv: Inventory, journal: Journal, incident_id: int | None) -> dict[str, Any]:
    chosen = _chosen(journal, incident_id)
    data: dict[str, Any] = {"journal": str(journal.path), "incident": None, "areas": {}}
    if chosen is None:
        return data
    data["incident"] = {"id": chosen.id, "status": chosen.status, "opened_at": chosen.opened_at,
                        "opened_by": chosen.opened_by, **chosen.spec.model_dump(mode="json")}
    scopes = journal.stages.postures(chosen.id)
    rows = journal.hosts.rows(chosen.id)
    planned = journaled_policies(inv, journal, chosen)
    data["open_incidents"] = open_incidents(inv, journal)
    data["locks"] = [{k: lock[k] for k in ("area", "pid", "hostname", "operator",
                                           "since")} for lock in journal.locks.held()]
    since = watch_start(chosen.opened_at)
    from orchestrator.identification.sources import Sources

    source = Sources(inv)
    detections = source.detections(since)
    data["skipped_log_lines"] = dict(source.skipped)  # lines of the detection logs that were not detections
    data["source_problems"] = source.problems(datetime.now(UTC))  # sources that cannot vouch for "none"
    data["watch"] = watch_state(journal)
    by_host = Counter(d.host for d in detections)
    for area in inv.areas.values():
        st = AreaState.from_scopes(area.name, scopes)
        stages = []
        for stage in journal.stages.of(chosen.id, area.name):
            failed = [{"host": r["host"], "status": r["status"], "failures": r["failures"]}
                      for r in journal.stages.hosts(stage.id) if r["status"] in ("failed", "unreachable")]
            stages.append({"id": stage.id, "phase": stage.phase, "name": stage.name, "state": stage.state,
                           "dry_run": stage.check_mode, "operator": stage.operator, "started_at": stage.started_at,
                           "ended_at": stage.ended_at, "failed_hosts": failed})
        segments = {}
        for seg in area.segments:
            if seg.kind == "mobile":
                posture = "blocked" if st.mobile_blocked else "connected"
            else:
                posture = "quarantined" if seg.qualified in st.quarantined else "connected"
            segments[seg.qualified] = {
                "kind": seg.kind, "posture": posture,
                "detections": sum(by_host[h] for h in seg.hosts),
                "detected_hosts": sorted(h for h in seg.hosts if by_host[h]),
            }
        remediation = {h: {"state": r["state"], "method": r["method"], "updated_at": r["updated_at"],
                           "updated_by": r["updated_by"], "detail": r["detail"]}
                       for h, r in journal.remediation.of(chosen.id, area.name).items()}
        recovery = [{"step": s.name, "number": s.detail.get("number"), "state": s.state, "operator": s.operator,
                     "started_at": s.started_at, "ended_at": s.ended_at, "soak": s.detail.get("soak"),
                     "reason": s.detail.get("reason"), "confirmed_by": s.detail.get("confirmed_by"),
                     "confirmation": s.detail.get("confirmation")}
                    for s in journal.stages.of(chosen.id, area.name) if s.phase == "recovery"]
        mine = {h: rows[h] for h in area.hosts if h in rows}
        data["areas"][area.name] = {
            "posture": st.posture, "vectors_blocked": st.vectors_blocked,
            "mobile_blocked": st.mobile_blocked, "segments": segments, "stages": stages,
            "remediation": remediation, "recovery": recovery,
            # not reached by irm: whatever host-level rule they carry, the boundary is what protects them
            "unreachable_hosts": {h: {"since": r["reach_at"], "stage": r["reach_stage"]}
                                  for h, r in mine.items() if r["reach"] == "unreachable"},
            "excluded_hosts": {h: {"reason": r["excluded_reason"], "by": r["excluded_by"], "at": r["excluded_at"]}
                               for h, r in mine.items() if r["excluded_reason"]},
            # reached, but what they reported enforcing is not what the area's postures plan for them
            "host_failures": {h: {"enforces": fp, "planned": planned[h].fingerprint}
                              for h, fp in not_as_planned(rows, planned, list(area.hosts)).items()},
        }
    return data


def journaled_policies(inv: Inventory, journal: Journal, incident: Incident) -> dict[str, Any]:
    """The policy of every boundary and area host that the journal's postures call for: this incident's
    (while it is open) together with every other open incident's, the strictest winning."""
    own = incident_states(inv, journal, incident.id) if incident.status == "open" else {}
    others, vectors = held_by_others(inv, journal, incident.id)
    return policies(inv, [*incident.spec.vectors, *(v for v in vectors if v not in incident.spec.vectors)],
                    strictest(others, own))


def open_incidents(inv: Inventory, journal: Journal) -> list[dict[str, Any]]:
    """Every open incident and the areas it holds (status shows them all, not only the one chosen)."""
    out = []
    for inc in journal.incidents.all():
        if inc.status != "open":
            continue
        out.append({"id": inc.id, "worm": inc.spec.worm, "vectors": [str(v) for v in inc.spec.vectors],
                    "holds": held(inv, journal, inc.id)})
    return out


def verify(inv: Inventory, inventory: Path, journal: Journal, incident_id: int | None) -> dict[str, Any]:
    """Read the live ruleset of every boundary and area host and compare it with what the journal says
    (IOS boundaries: their access lists and bindings, read with netmiko). Hosts that do not answer are
    named, never assumed to match."""
    chosen = _chosen(journal, incident_id)
    if chosen is None:
        raise UserError(f"no incident in journal {journal.path}: nothing to verify")
    planned = journaled_policies(inv, journal, chosen)
    excluded = sorted(h for h, r in journal.hosts.rows(chosen.id).items() if r["excluded_reason"])
    names = [h for h in planned if h in inv.hosts and h not in excluded]
    _, down = mgmt_probe.probe([e for e in checks.reach_targets(inv, names) if e["via"] == e["host"]])
    devices = [h for h in names if h not in down and inv.hosts[h].boundary_kind == "cisco_ios"]
    targets = [h for h in names if h not in down and h not in devices]
    live: dict[str, str] = {}
    differences: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    counted: dict[str, dict[str, int]] = {}
    for name in devices:  # IOS boundaries: read with netmiko and compared entry by entry
        try:
            problems, counted[name] = ios_readback.verify_counted(inv.hosts[name], planned[name])
        except UserError as exc:
            errors[name] = str(exc)  # named as not verified below
            continue
        differences[name] = problems
        live[name] = planned[name].fingerprint if not problems else "differs"
    if targets:
        try:
            result = routing.route(inv)("firewall_read", inventory, extravars=hosts_by_os(inv, targets))
        except RunnerError as exc:
            raise UserError(f"status --verify: the live rulesets could not be read ({exc})") from None
        read = {h: r for h, r in result.hosts.items() if r.status in ("ok", "changed")}
        live |= {h: str(r.facts.get("irm_live_fingerprint", "unknown")) for h, r in read.items()}
        for h, r in read.items():  # Linux: the live table's own rules, compared rule by rule with the plan
            if "irm_live_windows_rules" in r.facts:  # Windows: irm's rule group, compared rule by rule
                differences[h] = windows_differences(planned[h], r.facts["irm_live_windows_rules"])
                live[h] = planned[h].fingerprint if not differences[h] else "differs"
            if live[h] != planned[h].fingerprint and "irm_live_rules" in r.facts:
                differences[h] = table_differences(planned[h], r.facts["irm_live_rules"])
            if r.facts.get("irm_live_error"):
                differences[h] = [f"nftables could not be read: {r.facts['irm_live_error']}"]
        counted |= {h: r.facts.get("irm_counters") or {} for h, r in read.items()}
    drops = boundary_drops(inv, planned, counted)
    unread = sorted(set(names) - set(live))
    drift = {h: {"live": live[h], "journal": planned[h].fingerprint, "label": planned[h].label,
                 **({"differences": differences[h]} if differences.get(h) else {})}
             for h in sorted(live) if live[h] != planned[h].fingerprint}
    return {"incident": chosen.id, "checked": sorted(live), "drift": drift, "unreachable": unread,
            "excluded": excluded, "read_errors": errors, "boundary_drops": drops}


def watch_state(journal: Journal) -> dict[str, Any] | None:
    """What the journal says of irm watch: the newest start (policy, signers), whether automatic action is
    paused and why, and the automatic actions so far. None when no watcher ever ran on this journal."""
    rows = journal.timeline.of_kinds((EventKind.WATCH_STARTED, EventKind.WATCH_PAUSED, EventKind.WATCH_RESUMED,
                                      EventKind.WATCH_TRIGGERED))
    started = [r for r in rows if r["kind"] == EventKind.WATCH_STARTED]
    if not started:
        return None
    pauses = [r for r in rows if r["kind"] in (EventKind.WATCH_PAUSED, EventKind.WATCH_RESUMED)]
    paused = pauses[-1]["detail"]["reason"] if pauses and pauses[-1]["kind"] == EventKind.WATCH_PAUSED else None
    last = started[-1]
    return {"policy": last["detail"]["policy"], "signers": last["detail"]["signers"], "started_at": last["time"],
            "dry_run": last["detail"]["dry_run"], "paused": paused,
            "actions": [{"time": r["time"], "areas": r["detail"]["areas"], "dry_run": r["detail"]["dry_run"]}
                        for r in rows if r["kind"] == EventKind.WATCH_TRIGGERED]}
