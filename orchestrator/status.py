"""`irm status`: postures, stages, host failures and infections, from the journal and the detection source."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.detection import AvLogSource
from orchestrator.errors import UserError
from orchestrator.inventory import Inventory
from orchestrator.journal import Journal
from orchestrator.posture import AreaState


def gather(inv: Inventory, journal: Journal, incident_id: int | None) -> dict[str, Any]:
    incidents = journal.incidents()
    if incident_id is None:
        open_ = [i for i in incidents if i.status == "open"]
        chosen = open_[-1] if open_ else (incidents[-1] if incidents else None)
    else:
        chosen = journal.incident(incident_id)
    data: dict[str, Any] = {"journal": str(journal.path), "incident": None, "areas": {}}
    if chosen is None:
        return data
    data["incident"] = {"id": chosen.id, "status": chosen.status, "opened_at": chosen.opened_at,
                        "opened_by": chosen.opened_by, **chosen.spec.model_dump(mode="json")}
    scopes = journal.postures(chosen.id)
    since = datetime.fromisoformat(chosen.opened_at) - timedelta(hours=24)
    detections = AvLogSource(inv).detections(since)
    by_host = Counter(d.host for d in detections)
    for area in inv.areas.values():
        st = AreaState.from_scopes(area.name, scopes)
        stages = []
        for stage in journal.stages(chosen.id, area.name):
            failed = [{"host": r["host"], "status": r["status"], "failures": r["failures"]}
                      for r in journal.stage_hosts(stage.id) if r["status"] in ("failed", "unreachable")]
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
                       for h, r in journal.remediation(chosen.id, area.name).items()}
        recovery = [{"step": s.name, "number": s.detail.get("number"), "state": s.state, "operator": s.operator,
                     "started_at": s.started_at, "ended_at": s.ended_at, "soak": s.detail.get("soak"),
                     "reason": s.detail.get("reason"), "confirmed_by": s.detail.get("confirmed_by"),
                     "confirmation": s.detail.get("confirmation")}
                    for s in journal.stages(chosen.id, area.name) if s.phase == "recovery"]
        data["areas"][area.name] = {"posture": st.posture, "vectors_blocked": st.vectors_blocked,
                                    "mobile_blocked": st.mobile_blocked, "segments": segments, "stages": stages,
                                    "remediation": remediation, "recovery": recovery}
    return data


def render(console: Console, data: dict[str, Any]) -> None:
    inc = data["incident"]
    if inc is None:
        raise UserError(f"no incident in journal {data['journal']}: nothing to show yet")
    vectors = ", ".join(f"{v['protocol']}/{v['port']}" for v in inc["vectors"])
    console.print(f"incident {inc['id']} ({inc['status']}): {inc['worm']}, vectors {vectors}, opened "
                  f"{inc['opened_at'][:19]} by {inc['opened_by']}")
    for name, area in data["areas"].items():
        table = Table(title=f"area {name}: {area['posture']}"
                      f"{', vectors blocked' if area['vectors_blocked'] else ''}"
                      f"{', mobile blocked' if area['mobile_blocked'] else ''}")
        for col in ("sub-area", "kind", "posture", "detections", "detected hosts"):
            table.add_column(col)
        for seg, s in area["segments"].items():
            table.add_row(seg, s["kind"], s["posture"], str(s["detections"]), ", ".join(s["detected_hosts"]))
        console.print(table)
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
