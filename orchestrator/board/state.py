"""The board's snapshot: one JSON document the page renders, built from the journal (read-only), the
inventory, the detection sources (as ``irm status`` reads them) and the live runs' feeds.

What it says of a posture is what the journal holds, and the journal records a posture only when the
stage that set it has read its boundaries back and found exactly the plan (the applier's read-back; IOS
devices by netmiko): the board says when that was, and says plainly that a live check of the devices is
``irm status --verify`` (the board itself connects to no device).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.aftermath.report import describe
from orchestrator.board.feed import Tail
from orchestrator.core.events import EventKind
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import Journal
from orchestrator.identification.status import gather

TIMELINE = 200  # the newest events shown
BUCKET = 60  # seconds per point of the detections' series


def _bucket(at: str) -> str:
    t = datetime.fromisoformat(at).astimezone(UTC)
    return datetime.fromtimestamp(int(t.timestamp()) // BUCKET * BUCKET, UTC).isoformat(timespec="seconds")


def snapshot(inv: Inventory, journal: Path, tail: Tail, incident_id: int | None = None) -> dict[str, Any]:
    """Everything the board shows, as plain JSON."""
    runs = tail.read()
    data: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "journal": str(journal),
        "incident": None, "open_incidents": [], "areas": [], "running": [], "decisions": [], "timeline": [],
        "notifications": [], "detections": {"series": {}, "now": {}}, "watch": None, "report": False,
    }
    data["running"] = [{"command": v.command, "stage": v.stage, "summary": v.summary, "task": v.task,
                        "hosts": [{"host": h, "status": s} for h, s in sorted(v.hosts.items())],
                        "counts": dict(Counter(v.hosts.values())), "notices": v.notices[-5:],
                        "ended": v.ended[-10:]} for v in runs.values()]
    if not journal.exists():
        return data
    j = Journal.reader(journal)
    try:
        status = gather(inv, j, incident_id)
        if status["incident"] is None:
            return data
        inc_id = int(status["incident"]["id"])
        events = j.timeline.of(inc_id)
        approvals = j.decisions.approvals(inc_id)
        running_rows = [s for s in j.stages.of(inc_id) if s.state == "running"]
    finally:
        j.close()
    inc = status["incident"]
    data["incident"] = {k: inc[k] for k in ("id", "status", "opened_at", "opened_by", "worm")} | {
        "vectors": [f"{v['protocol']}/{v['port']}" for v in inc.get("vectors", [])]}
    data["open_incidents"] = status.get("open_incidents", [])
    data["watch"] = status.get("watch")
    data["report"] = True  # the report is built from the journal on request (/report)
    approved = {a["area"] for a in approvals}
    last_change: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev["kind"] == EventKind.STAGE_ENDED and ev["area"]:
            last_change[ev["area"]] = {"stage": f"{ev['detail'].get('phase')} {ev['detail'].get('name')}",
                                       "state": ev["detail"].get("state"), "at": ev["time"]}
    for name, area in status["areas"].items():
        data["areas"].append({
            "name": name, "posture": area["posture"], "vectors_blocked": area["vectors_blocked"],
            "mobile_blocked": area["mobile_blocked"], "last_change": last_change.get(name),
            # a segment neither quarantined nor blocked is as cut as its area: drawn in the area's posture
            "segments": [{"scope": scope, "name": scope.split("/", 1)[-1], "kind": seg["kind"],
                          "posture": seg["posture"], "detections": seg["detections"],
                          "shown": area["posture"] if seg["posture"] == "connected" else seg["posture"],
                          "detected_hosts": seg["detected_hosts"]} for scope, seg in area["segments"].items()],
            "running": [{"phase": s.phase, "name": s.name, "started_at": s.started_at}
                        for s in running_rows if s.area == name],
        })
        data["decisions"] += _decisions(name, area, name in approved)
    for v in runs.values():
        data["decisions"] += [{"kind": "notice", "area": "", "text": n["text"]} for n in v.notices[-3:]]
    data["timeline"] = [{"id": e["id"], "time": e["time"], "kind": e["kind"], "area": e["area"] or "",
                         "operator": e["operator"] or "", "text": describe(e)} for e in events[-TIMELINE:]]
    data["notifications"] = [{"time": e["time"], "ok": e["kind"] == EventKind.NOTIFIED,
                              "channel": e["detail"].get("channel", ""), "subject": e["detail"].get("subject", ""),
                              "recipients": len(e["detail"].get("recipients", [])),
                              "error": e["detail"].get("error", "")}
                             for e in events if e["kind"] in (EventKind.NOTIFIED, EventKind.NOTIFY_FAILED)]
    data["detections"] = _detections(inv, events, status, runs)
    return data


def _decisions(name: str, area: dict[str, Any], approved: bool) -> list[dict[str, str]]:
    """What the crisis cell or the operator must decide or do for this area now."""
    out = []
    for host, u in sorted(area["unreachable_hosts"].items()):
        out.append({"kind": "unreachable", "area": name, "text": f"{host} not reached since {u['since']} ("
                    f"{u['stage']}): protected by the boundary only; re-run, or irm exclude {host}"})
    for host, f in sorted(area["host_failures"].items()):
        out.append({"kind": "host_failure", "area": name, "text": f"{host} does not enforce what the journal "
                    f"plans (it reported {f['enforces'] or 'nothing'})"})
    rem = area["remediation"]
    manual = sorted(h for h, r in rem.items() if r["state"] in ("manual-needed", "failed"))
    if manual:
        out.append({"kind": "manual", "area": name, "text": f"manual work needed on {', '.join(manual)} "
                    "(irm mark-manual HOST --technician NAME)"})
    done = rem and all(r["state"] == "verified" or h in area["excluded_hosts"] for h, r in rem.items())
    if done and not approved and area["posture"] != "connected":
        out.append({"kind": "approval", "area": name, "text": f"management approval needed to recover {name} "
                    f"(irm approve --area {name})"})
    return out


def _detections(inv: Inventory, events: list[Any], status: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
    """Detections per sub-area over time (the journaled samples, one point per minute) and now."""
    where = {h: seg.qualified for area in inv.areas.values() for seg in area.segments for h in seg.hosts}
    series: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e["kind"] != EventKind.DETECTIONS:
            continue
        for item in e["detail"].get("items", []):
            seg = item.get("segment") or where.get(str(item.get("host")))
            if seg and item.get("time"):
                series[seg][_bucket(str(item["time"]))] += 1
    for v in runs.values():  # the sub-area loop's and soaks' samples, not journaled yet
        for sample in v.detections:
            for seg, n in sample["by_segment"].items():
                if n and sample.get("t"):
                    series[seg][_bucket(sample["t"])] = max(series[seg][_bucket(sample["t"])], int(n))
    now = {scope: seg["detections"] for area in status["areas"].values() for scope, seg in area["segments"].items()}
    return {"series": {seg: [[at, n] for at, n in sorted(points.items())] for seg, points in sorted(series.items())},
            "now": now, "bucket_seconds": BUCKET}
