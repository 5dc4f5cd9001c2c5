"""The crisis report (IRM #1, aftermath), built from the journal alone, as Markdown, HTML and JSON.

Summary (worm, vectors, perimeter, first detection, patient zero), the timeline (one row per journal
event, each response action tagged with its RE&CT identifier), durations per phase and area, what
went right and wrong (facts from the journal beside the crisis cell's notes), the cost (formula and
every input shown; an input the inventory does not declare is said so and left out) and the action
items (added by the crisis cell, and suggested from the facts). No secret: the journal holds none,
and every text is passed through ``redact`` with the secrets the caller knows (vault values).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from orchestrator.aftermath.model import MILESTONES, ReportData
from orchestrator.containment.table import CONTAINMENT, is_first_cut
from orchestrator.core.events import EventKind
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import EventRow, Journal
from orchestrator.core.safetext import md, redact
from orchestrator.preparation import archmap
from orchestrator.recovery.table import recovery_step

# RE&CT response actions (atc-project/atc-react) for what irm does.
TEMPLATES = Path(__file__).resolve().parent / "templates"

REACT = {
    **{p.name: (p.react.id, p.react.name) for p in CONTAINMENT},
    "method:package": ("RA3001", "Patch vulnerability"),
    "method:wsus": ("RA3001", "Patch vulnerability"),
    "method:win_updates": ("RA3001", "Patch vulnerability"),
    "method:gpo": ("RA3001", "Patch vulnerability"),
    "method:antivirus": ("RA4301", "Remove file"),
    "method:disinfect": ("RA4301", "Remove file"),
    "report": ("RA6001", "Develop incident report"),
    "lessons": ("RA6002", "Conduct lessons learned exercise"),
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _hours(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds() / 3600)


def react_for(event: EventRow) -> tuple[str, str] | None:
    """The RE&CT response action a journal event records, if it records one."""
    d = event["detail"]
    if event["kind"] != EventKind.STAGE_ENDED or d.get("state") != "done" or d.get("dry_run"):
        return None
    name, phase = str(d.get("name", "")), d.get("phase")
    if phase in ("containment", "remediation"):
        return REACT.get(name)
    if phase == "recovery-apply":
        try:
            react = recovery_step(name).react
        except KeyError:
            return None
        return react.id, react.name
    return None


def describe(event: EventRow) -> str:
    d, kind = event["detail"], event["kind"]
    texts: dict[str, Callable[[], str]] = {  # the kinds are strings (a StrEnum)
        EventKind.INCIDENT_OPENED: lambda: f"incident opened: {d.get('worm', '')}",
        EventKind.INCIDENT_CLOSED: lambda: "incident closed" + (f" by force: {d.get('reason')}" if d.get("forced")
                                                               else ""),
        EventKind.CONTAINMENT_STARTED: lambda: f"containment started{' (dry run)' if d.get('dry_run') else ''}",
        EventKind.CONTAINMENT_FAILED: lambda: f"containment {'dry run ' if d.get('dry_run') else ''}failed: "
                                      f"{d.get('reason')}",
        EventKind.CONTAINMENT_FINISHED: lambda: "containment finished; quarantined: "
                                        + (", ".join(d.get("quarantined", [])) or "none"),
        EventKind.DETECTIONS: lambda: f"{d.get('count')} detection(s): {', '.join(d.get('hosts', []))}",
        EventKind.SUBAREA_QUARANTINED: lambda: f"sub-area quarantined: {', '.join(d.get('sub_areas', []))}",
        EventKind.SPREAD_STOPPED: lambda: f"spread stopped (no detection for {d.get('quiet_window')}s)",
        EventKind.BOUNDARY_DROPS: lambda: f"boundary {d.get('host')} dropped {d.get('packets')} worm attempt(s) "
                                          f"from {d.get('segment')} ({d.get('total')} since its table was loaded)",
        EventKind.STAGE_STARTED: lambda: f"{d.get('phase')} {d.get('name')} started on {d.get('target')}",
        EventKind.STAGE_ENDED: lambda: f"{d.get('phase')} {d.get('name')} {d.get('state')}",
        EventKind.LOCKOUT_REVERTED: lambda: f"dead-man timer reverted {', '.join(d.get('hosts', []))}",
        EventKind.APPROVAL: lambda: (
            f"recovery of {event['area']} approved by {d.get('approved_by')} ({d.get('role')}), signed with "
            f"{d.get('key_fingerprint')}: {d.get('reason')}" if d.get("signed") else
            f"recovery approved by {d.get('approved_by')} ({d.get('role')}), unsigned: {d.get('reason')}"),
        EventKind.REMEDIATION_HOST: lambda: f"{d.get('host')}: {d.get('state')}"
                                    + (f" ({d.get('method')})" if d.get("method") else ""),
        EventKind.REMEDIATION_METHOD_FAILED: lambda: f"{d.get('host')}: method {d.get('method')} failed: "
                                             f"{d.get('reason')}",
        EventKind.REMEDIATION_MANUAL_DONE: lambda: f"{d.get('host')}: manual remediation recorded, by {d.get('by')}",
        EventKind.RECOVERY_HALTED: lambda: f"recovery halted at {d.get('step')}: {d.get('reason')}",
        EventKind.RECOVERY_RESUMED: lambda: f"recovery resumed at {d.get('step')}",
        EventKind.HOSTS_UNREACHABLE: lambda: f"not reached ({d.get('stage')}), protected by the boundary only: "
                                     + ", ".join(d.get("hosts", [])),
        EventKind.HOST_EXCLUDED: lambda: f"{d.get('host')} excluded by the operator: {d.get('reason')}",
        EventKind.LOCK_TAKEN_OVER: lambda: f"lock {event['area']} taken over from a dead run (pid {d.get('pid')})",
        EventKind.LOCK_RELEASED_BY_OPERATOR: lambda: f"lock {d.get('lock')} released by the operator: "
                                             f"{d.get('reason')}",
        EventKind.STAGE_INTERRUPTED: lambda: f"{d.get('name')} interrupted (irm was killed); redone",
        EventKind.WATCH_TRIGGERED: lambda: f"{'would contain' if d.get('dry_run') else 'contained'} "
                                           f"{', '.join(d.get('areas', []))} automatically (through "
                                           f"{d.get('through')}) under policy {d.get('policy')}, signed by "
                                           f"{', '.join(d.get('signers', []))}",
        EventKind.WATCH_QUARANTINED: lambda: f"{'would quarantine' if d.get('dry_run') else 'quarantined'} "
                                             + ", ".join(s for subs in d.get("sub_areas", {}).values() for s in subs)
                                             + f" automatically under policy {d.get('policy')}",
        EventKind.NOTIFIED: lambda: f"crisis cell told by {d.get('channel')} ({len(d.get('recipients', []))} "
                                    f"recipient(s)): {d.get('subject')}",
        EventKind.NOTIFY_FAILED: lambda: f"crisis cell NOT told by {d.get('channel')}: {d.get('error')}",
    }
    return texts[kind]() if kind in texts else kind.replace("_", " ")


class Report:
    def __init__(self, inv: Inventory, journal: Journal, incident_id: int | None,
                 now: datetime | None = None, secrets: list[str] | None = None) -> None:
        self.inv = inv
        self.journal = journal
        incidents = journal.incidents.all()
        self.incident = journal.incidents.get(incident_id) if incident_id is not None else (
            journal.incidents.open_for(None) if any(i.status == "open" for i in incidents) else incidents[-1])
        self.now = now or datetime.now(UTC)
        self.secrets = [s for s in (secrets or []) if s]

    def data(self) -> ReportData:
        inc = self.incident
        events = self.journal.timeline.of(inc.id)
        opened = _at(inc.opened_at)
        timeline = []
        for e in events:
            tag = react_for(e)
            timeline.append({"id": e["id"], "time": e["time"], "kind": e["kind"], "area": e["area"],
                             "operator": e["operator"], "text": describe(e),
                             "react": tag[0] if tag else None, "react_name": tag[1] if tag else None})
        detections = [item for e in events if e["kind"] == EventKind.DETECTIONS
                      for item in e["detail"].get("items", [])]
        detections.sort(key=lambda d: d["time"])
        addresses = {str(h.address) for h in self.inv.hosts.values()}
        seeded = [d for d in detections if d.get("source_address") not in addresses]
        areas = self._areas(events, opened)
        facts = self._facts(events)
        notes = self.journal.decisions.notes(inc.id)
        for n in notes:  # the crisis cell's own verdicts stand beside the journal's facts
            if n["kind"] in ("right", "wrong"):
                facts[n["kind"]].append(f"{n['at'][:19]} {n['text']} (note by {n['by']})")
        data = {
            "incident": {"id": inc.id, "worm": inc.spec.worm, "vectors": [str(v) for v in inc.spec.vectors],
                         "signatures": inc.spec.signatures, "references": inc.spec.references,
                         "status": inc.status, "opened_at": inc.opened_at, "opened_by": inc.opened_by},
            "generated_at": self.now.isoformat(),
            "first_detection": detections[0] if detections else None,
            "patient_zero": (seeded[0]["host"] if seeded else detections[0]["host"]) if detections else None,
            "perimeter": {
                "areas": sorted(a for a, v in areas.items() if v["contained_at"]),
                "sub_areas": sorted({s for e in events if e["kind"] == EventKind.SUBAREA_QUARANTINED
                                     for s in e["detail"].get("sub_areas", [])}),
                "infected_hosts": sorted({d["host"] for d in detections}),
            },
            "areas": areas,
            "timeline": timeline,
            "facts": facts,
            "notes": notes,
            "approvals": [{k: a.get(k) for k in ("area", "approved_by", "role", "reason", "approved_at",
                                                 "recorded_by", "key_fingerprint", "statement", "signature")}
                          for a in self.journal.decisions.approvals(inc.id)],
            "cost": self._cost(events, areas, opened),
            "actions": self._actions(events, facts),
            "architecture_md": archmap.markdown(self.inv),
            "architecture_svg": archmap.svg(self.inv),
        }
        return ReportData.model_validate(redact(json.loads(json.dumps(data, default=str)), self.secrets))

    def _areas(self, events: list[EventRow], opened: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, area in self.inv.areas.items():
            mine = [e for e in events if e["area"] == name]

            def first(kind: str, pred: Any = None, evs: list[EventRow] = mine) -> str | None:
                return next((e["time"] for e in evs if e["kind"] == kind and (pred is None or pred(e))), None)

            def last(kind: str, pred: Any = None, evs: list[EventRow] = mine) -> str | None:
                return next((e["time"] for e in reversed(evs) if e["kind"] == kind and (pred is None or pred(e))), None)

            real = [e for e in mine if not e["detail"].get("dry_run")]
            contained_at = first("containment_started", evs=real)
            stages = self.journal.stages.of(self.incident.id, name)
            cut = next((s.detail.get("first_applied_at") or s.ended_at for s in stages
                        if s.phase == "containment" and is_first_cut(s.name) and s.state == "done"
                        and not s.check_mode), None)
            states: dict[str, str] = {}
            remediated_at = None
            for e in mine:
                if e["kind"] == EventKind.REMEDIATION_HOST:
                    states[e["detail"]["host"]] = e["detail"]["state"]
                    if set(area.hosts) <= set(states) and all(states[h] == "verified" for h in area.hosts):
                        remediated_at = remediated_at or e["time"]
            milestones = {
                "first_cut": cut,
                "spread_stopped": first("spread_stopped"),
                "remediated": remediated_at,
                "recovered": last("recovery_finished"),
            }
            out[name] = {
                "contained_at": contained_at,
                "milestones": milestones,
                "since_opened_s": {k: round((_at(v) - opened).total_seconds(), 1) if v else None
                                   for k, v in milestones.items()},
                "phases": {
                    "containment": [contained_at, first("spread_stopped") or last("containment_finished")],
                    "remediation": [first("remediation_started"), remediated_at],
                    "recovery": [first("recovery_started"), last("recovery_finished")],
                },
                "halts": [e["time"] for e in mine if e["kind"] == EventKind.RECOVERY_HALTED],
                "downtime_cost_per_hour": area.downtime_cost_per_hour,
            }
        return out

    def _facts(self, events: list[EventRow]) -> dict[str, list[str]]:
        wrong, right = [], []
        manual = sorted({e["detail"]["host"] for e in events if e["kind"] == EventKind.REMEDIATION_HOST
                         and e["detail"].get("state") == "manual-needed"})
        for e in events:
            d, at = e["detail"], e["time"][:19]
            if e["kind"] == EventKind.STAGE_ENDED and d.get("state") in ("failed", "halted") and not d.get("dry_run"):
                wrong.append(f"{at} {d.get('phase')} {d.get('name')} {d.get('state')} ({e['area']})")
            elif e["kind"] == EventKind.LOCKOUT_REVERTED:
                wrong.append(f"{at} a change cut management; the dead-man timer reverted "
                             + ", ".join(d.get("hosts", [])))
            elif e["kind"] == EventKind.RECOVERY_HALTED:
                wrong.append(f"{at} reinfection or closed path during recovery of {e['area']}: {d.get('reason')}")
            elif e["kind"] == EventKind.REMEDIATION_METHOD_FAILED:
                wrong.append(f"{at} {d.get('host')}: {d.get('method')} failed ({str(d.get('reason'))[:120]})")
            elif e["kind"] in (EventKind.CONTAINMENT_REFUSED, EventKind.RECOVERY_REFUSED,
                               EventKind.REMEDIATION_CANARY_FAILED):
                wrong.append(f"{at} {e['kind'].replace('_', ' ')} ({e['area']})")
            elif e["kind"] == EventKind.HOST_EXCLUDED:
                wrong.append(f"{at} {d.get('host')} excluded from recovery by {e['operator']}: {d.get('reason')}")
            elif e["kind"] == EventKind.HOSTS_UNREACHABLE:
                wrong.append(f"{at} not reached during {d.get('stage')} ({e['area']}): {', '.join(d.get('hosts', []))}")
            elif e["kind"] == EventKind.SPREAD_NOT_STOPPED:
                wrong.append(f"{at} the spread had not stopped after {d.get('waited')}s ({e['area']})")
            elif e["kind"] == EventKind.SPREAD_STOPPED:
                right.append(f"{at} the spread stopped in {e['area']}")
            elif e["kind"] == EventKind.REMEDIATION_CANARIES_VERIFIED:
                right.append(f"{at} canaries {', '.join(d.get('canaries', []))} verified before the rest of "
                             f"{e['area']}")
            elif e["kind"] == EventKind.RECOVERY_FINISHED:
                right.append(f"{at} {e['area']} reconnected, every step soaked")
        if manual:
            wrong.append(f"hosts that needed manual remediation: {', '.join(manual)}")
        return {"right": right, "wrong": wrong, "manual_hosts": manual}

    def _cost(self, events: list[EventRow], areas: dict[str, Any], opened: datetime) -> dict[str, Any]:
        c = self.inv.costs
        lines, missing = [], []
        total = 0.0
        for name, a in areas.items():
            start, end = a["milestones"]["first_cut"], a["milestones"]["recovered"]
            if not start:
                continue
            ongoing = end is None
            hours = _hours(_at(start), _at(end) if end else self.now)
            rate = a["downtime_cost_per_hour"]
            if rate is None:
                missing.append(f"irm_downtime_cost_per_hour of area {name}")
                continue
            amount = hours * rate
            total += amount
            lines.append({"item": f"downtime of {name}", "formula": "hours x downtime cost per hour",
                          "inputs": {"from": start, "to": end or f"{self.now.isoformat()} (not recovered yet)",
                                     "hours": round(hours, 4), "cost_per_hour": rate},
                          "amount": round(amount, 2), "ongoing": ongoing})
        ends = [a["milestones"]["recovered"] for a in areas.values() if a["milestones"]["recovered"]]
        last_event = _at(events[-1]["time"]) if events else opened
        end_cell = max([_at(e) for e in ends] or [last_event])
        if c.crisis_cell_size is None or c.crisis_cell_hourly_rate is None:
            missing.append("irm_crisis_cell_size and irm_crisis_cell_hourly_rate")
        else:
            hours = _hours(opened, end_cell)
            amount = hours * c.crisis_cell_size * c.crisis_cell_hourly_rate
            total += amount
            lines.append({"item": "crisis cell", "formula": "hours x people x hourly rate",
                          "inputs": {"from": opened.isoformat(), "to": end_cell.isoformat(),
                                     "hours": round(hours, 4), "people": c.crisis_cell_size,
                                     "hourly_rate": c.crisis_cell_hourly_rate},
                          "amount": round(amount, 2)})
        final: dict[str, dict[str, Any]] = {}
        for e in events:
            if e["kind"] == EventKind.REMEDIATION_HOST:
                final[e["detail"]["host"]] = e["detail"]
        verified = [h for h, d in final.items() if d.get("state") == "verified"]
        manual = [h for h in verified if final[h].get("method") == "manual"]
        automatic = [h for h in verified if h not in manual]
        for label, hosts, rate, key in (("automatic remediation", automatic, c.remediation_cost_per_host,
                                         "irm_remediation_cost_per_host"),
                                        ("manual remediation", manual, c.manual_remediation_cost_per_host,
                                         "irm_manual_remediation_cost_per_host")):
            if not hosts:
                continue
            if rate is None:
                missing.append(key)
                continue
            amount = len(hosts) * rate
            total += amount
            lines.append({"item": label, "formula": "hosts x cost per host",
                          "inputs": {"hosts": len(hosts), "host_names": sorted(hosts), "cost_per_host": rate},
                          "amount": round(amount, 2)})
        return {"currency": c.currency, "lines": lines, "total": round(total, 2), "not_declared": missing}

    def _actions(self, events: list[EventRow], facts: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = [{"text": a["text"], "owner": a["owner"], "react": a["react"], "due": a["due"], "source": "crisis cell",
                "added_by": a["added_by"], "added_at": a["added_at"]}
               for a in self.journal.decisions.actions(self.incident.id)]
        if facts["manual_hosts"]:
            out.append({"text": f"Make automatic remediation work on {', '.join(facts['manual_hosts'])} (every method "
                                "failed there; see the facts)", "owner": None, "react": "RA4301", "due": None,
                        "source": "suggested"})
        failed_methods = sorted({str(e["detail"].get("method")) for e in events
                                 if e["kind"] == EventKind.REMEDIATION_METHOD_FAILED})
        if failed_methods:
            out.append({"text": f"Find out why methods {', '.join(failed_methods)} failed on some hosts and prepare "
                                "a workaround", "owner": None, "react": "RA3001", "due": None, "source": "suggested"})
        if any(e["kind"] == EventKind.CONTAINMENT_REFUSED for e in events):
            out.append({"text": "Review the critical flows refused at containment (validation, vectors, width)",
                        "owner": None, "react": "RA3102", "due": None, "source": "suggested"})
        if any(e["kind"] == EventKind.LOCKOUT_REVERTED for e in events):
            out.append({"text": "Review the change that cut the management path", "owner": None, "react": "RA3108",
                        "due": None, "source": "suggested"})
        if any(e["kind"] == EventKind.RECOVERY_HALTED for e in events):
            out.append({"text": "Find how the worm came back during recovery", "owner": None, "react": "RA5101",
                        "due": None, "source": "suggested"})
        out.append({"text": "Hold the lessons-learned meeting with this report", "owner": None, "react": "RA6002",
                    "due": None, "source": "suggested"})
        return out


# -- rendering ---------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:,.2f}"


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["md"] = md
    return env


def _context(report: ReportData) -> dict[str, Any]:
    """What both templates show, computed once: the cost lines' inputs and amounts as text."""
    data = report.model_dump(mode="json")
    cost = {**data["cost"], "lines": [
        {**c, "inputs_text": ", ".join(f"{k} {v}" for k, v in c["inputs"].items() if k != "host_names"),
         "amount_text": _fmt(c["amount"])} for c in data["cost"]["lines"]]}
    return {"data": {**data, "cost": cost}, "inc": data["incident"], "cur": report.cost.currency,
            "total": _fmt(report.cost.total)}


def markdown(data: ReportData) -> str:
    """Every value from the journal, the inventory or an operator goes through ``safetext.md`` in the
    template (templates/report.md.j2): it shows as the characters it is, and cannot open HTML, a link,
    a heading or a table cell."""
    return _environment(autoescape=False).get_template("report.md.j2").render(**_context(data))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;
padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;border-bottom:2px solid #1b1f24}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #c9d1d9;padding:.25rem .4rem;
text-align:left;vertical-align:top}th{background:#eef1f4}
.tag{font-family:ui-monospace,monospace;background:#eef1f4;padding:0 .25rem;border-radius:3px}
.wrong li{color:#8a1c1c}.right li{color:#1c5e2a}svg{width:100%;height:auto;border:1px solid #c9d1d9}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}tr{page-break-inside:avoid}}
"""

_PHASE_COLOURS = {"containment": "#c0392b", "remediation": "#d68910", "recovery": "#1e8449"}


def _svg(data: ReportData) -> str:
    areas = [(n, a) for n, a in data.areas.items() if a.contained_at]
    times = [datetime.fromisoformat(e.time) for e in data.timeline] or [datetime.fromisoformat(data.generated_at)]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    width, left, row = 900, 120, 34
    height = 40 + row * max(len(areas), 1) + 30

    def x(ts: str | None) -> float:
        return left + (width - left - 20) * ((datetime.fromisoformat(ts) - start).total_seconds() / span) if ts \
            else left

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="phases per area">']
    for i, (name, a) in enumerate(areas):
        y = 30 + i * row
        parts.append(f'<text x="4" y="{y + 15}" font-size="12">{html.escape(name)}</text>')
        for phase, (p0, p1) in a.phases.items():
            if not p0:
                continue
            x0, x1 = x(p0), x(p1 or data.generated_at)
            parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 2):.1f}" height="20" '
                         f'fill="{_PHASE_COLOURS[phase]}" opacity="0.85"><title>{phase}: {p0[:19]} to '
                         f'{(p1 or "not finished")[:19]}</title></rect>')
        for halt in a.halts:
            parts.append(f'<line x1="{x(halt):.1f}" x2="{x(halt):.1f}" y1="{y - 3}" y2="{y + 23}" stroke="#000" '
                         f'stroke-width="2"><title>recovery halted {halt[:19]}</title></line>')
    legend_y = height - 10
    for i, (phase, colour) in enumerate(_PHASE_COLOURS.items()):
        parts.append(f'<rect x="{left + i * 140}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + i * 140 + 16}" y="{legend_y}" font-size="11">{phase}</text>')
    parts.append(f'<text x="4" y="14" font-size="11">{start.isoformat()[:19]} UTC</text>'
                 f'<text x="{width - 4}" y="14" font-size="11" text-anchor="end">{end.isoformat()[:19]} UTC</text>'
                 "</svg>")
    return "".join(parts)


def html_page(data: ReportData) -> str:
    """One self-contained page (templates/report.html.j2), autoescaped: only the SVG is markup."""
    first = data.first_detection
    first_text = f"{first.host} at {first.time[:19]}" if first else "none recorded"
    inc, perimeter = data.incident, data.perimeter
    summary = [f"Worm {inc.worm}; vectors {', '.join(inc.vectors)}; signatures "
               f"{', '.join(inc.signatures) or 'none recorded'}; references "
               f"{', '.join(inc.references) or 'none'}",
               f"Opened {inc.opened_at[:19]} by {inc.opened_by}; status {inc.status}",
               f"First detection: {first_text}",
               f"Patient zero (from the detection sources): {data.patient_zero or 'unknown'}",
               f"Perimeter: areas {', '.join(perimeter.areas) or 'none'}; sub-areas quarantined "
               f"{', '.join(perimeter.sub_areas) or 'none'}; infected hosts "
               f"{', '.join(perimeter.infected_hosts) or 'none'}"]
    durations = [[n] + [f"{s:.1f}s" if (s := a.since_opened_s.get(k)) is not None else "not yet" for k in MILESTONES]
                 for n, a in data.areas.items() if a.contained_at]
    notes = [f"{n.at[:19]} {n.by} ({n.kind}): {n.text}" for n in data.notes]
    approvals = [f"{a.approved_at[:19]} {a.approved_by} ({a.role}) approved the recovery of {a.area}, "
                 f"signed with {a.key_fingerprint}: {a.reason}" for a in data.approvals]
    return _environment(autoescape=True).get_template("report.html.j2").render(
        **_context(data), css=markupsafe.Markup(_CSS), svg=markupsafe.Markup(_svg(data)),
        architecture=markupsafe.Markup(data.architecture_svg), summary=summary,
        durations=durations, notes=notes, approvals=approvals)
