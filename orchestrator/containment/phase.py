"""Containment of one or more areas, in the IRM #1 order, every step journaled.

The stages are the table's (``containment.table``): 1. Internet cut at the edge; 2. isolation at the
area gateway (critical flows kept open); 3. the propagation vectors and removable storage blocked on
every area host; 4. the mobile segments blocked at the gateway; 5. the sub-area loop: every sub-area
that shows infections is quarantined, until no new detection appears for a quiet window. The
boundaries are a detection source of the loop too (``sensor``): a rise of a drop counter for a sub-area
not yet quarantined (its worm trying to leave the area at the gateway, or blocked by its own host's
vector rule) quarantines that sub-area and restarts
the quiet window, so "the spread has stopped" means that no source detects anything new and that no
boundary drops a new attempt from a sub-area the loop still leaves connected. Each stage is applied by
the shared ``StageApplier``.

Chokepoints come first, so the time to the first cut does not grow with the area. Before each stage
the whole planned policy set is checked against the operator's management path; each stage applies
commit-confirmed (a dead-man timer restores the previous ruleset unless irm reconnects and confirms).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.containment.table import HOST_STAGE, STAGES, SUBAREA_LOOP, containment_stage
from orchestrator.core import checks, mgmt_probe, routing, runner
from orchestrator.core.applier import ApplierSettings, StageApplier, StageOutcome, StageSpec
from orchestrator.core.detection import LOOKBACK, Detection, DetectionSource, Drop, DropSensor, watch_start
from orchestrator.core.errors import ContainmentFailed, RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Area, Inventory
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.phases import Brief, Where
from orchestrator.core.posture import AreaState, Policy, not_as_planned
from orchestrator.core.stream import DecisionNeeded, Detections, EventStream
from orchestrator.crisis import notify


@dataclass
class ContainRequest:
    inventory: Path
    operator: str
    area: str = ""  # one area, or ``areas``
    incident_id: int | None = None
    dry_run: bool = False
    confirm_timeout: int = 60
    quiet_window: float = 30.0
    max_wait: float = 900.0
    poll: float = 1.0
    lookback: timedelta = LOOKBACK
    loop: bool = True
    lock_wait: float = 600.0  # how long a change to shared boundaries waits for another run's
    areas: list[str] = field(default_factory=list)  # several areas, contained at once
    take_over: bool = False  # --take-over: no compare-and-swap against the journal's last recorded tables
    through: int = len(STAGES)  # the last stage number to run (an automatic policy may stop after isolation)
    first: int = 1  # the first stage number to run (irm watch deepens an area it has cut off: the later stages)
    sensor_interval: float = 5.0  # seconds between two live readings of the boundaries' drop counters
    # sub-areas to quarantine once the stages are done, before any loop (irm watch, under its policy)
    quarantine: dict[str, set[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        names = list(dict.fromkeys(self.areas or [self.area]))
        if not names or not all(names):
            raise UserError("no area to contain")
        return names


@dataclass
class ContainReport:
    area: str
    incident_id: int
    dry_run: bool
    stages: list[StageOutcome] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    spread_stopped: bool | None = None
    first_cut_seconds: float | None = None
    total_seconds: float = 0.0
    detections: int = 0
    unreachable: list[str] = field(default_factory=list)  # area hosts not reached: protected by the boundary only
    host_failures: dict[str, str] = field(default_factory=dict)  # area hosts a host-level stage failed on

    @property
    def changed_hosts(self) -> set[str]:
        return {h for s in self.stages for h in s.changed}


class Containment:
    """Contains one or more areas of one incident. With several, every stage is one play for all of
    them: every area's first cut at the edge comes first, then every gateway's isolation, then the
    host-level work of all their hosts, and one sub-area loop watches them all. Each area is journaled
    as its own containment (its own stage rows and events), so status, the report, remediation and
    recovery stay per area."""

    phase = "containment"  # the journal's phase for this object's stages

    def __init__(self, req: ContainRequest, inv: Inventory, journal: Journal, source: DetectionSource,
                 events: EventStream | None = None, *, run: runner.PlaybookRunner = runner.run_playbook,
                 probe: runner.ManagementProber = mgmt_probe.probe, sensor: DropSensor | None = None) -> None:
        self.req = req
        self.sensor = sensor  # the boundaries' drop counters, read live by the sub-area loop (None: not read)
        self._sensor_said: set[str] = set()
        self.inv = inv
        self.journal = journal
        self.source = source
        self.events = events or EventStream()  # what this run tells its listeners (core.stream)
        self.areas = [inv.area(name) for name in req.names]
        self.names = [a.name for a in self.areas]
        self.incident: Incident = journal.incidents.open_for(req.incident_id)
        self.vectors: list[Vector] = list(self.incident.spec.vectors)
        self.state: dict[str, AreaState] = {}
        self._reread()
        self.applier = StageApplier(inv, journal, self.incident, ApplierSettings(
            req.inventory, req.operator, self.phase, tuple(self.vectors), dry_run=req.dry_run,
            confirm_timeout=req.confirm_timeout, lock_wait=req.lock_wait, take_over=req.take_over),
            self.events, run, probe)
        if not req.dry_run:
            notify.listen(self.events, inv, journal)

    @property
    def area(self) -> Area:
        """The first (or only) area."""
        return self.areas[0]


    def _reread(self) -> None:
        """The states again, under the area locks: another operator may have moved them since the plan
        was shown (the prompt sits in between)."""
        scopes = self.journal.stages.postures(self.incident.id)
        self.state = {name: AreaState.from_scopes(name, scopes) for name in self.names}

    # -- planning ----------------------------------------------------------------------------------

    def preflight(self, reach_nodes: bool = True) -> None:
        """Everything that must hold before the first change; raises with every problem found. Without
        ``reach_nodes`` (an offline plan) the execution nodes are not asked whether they answer."""
        problems: list[str] = []
        for area in self.areas:
            problems += [p for p in checks.check_critical_flows(self.inv, area, self.vectors) if p not in problems]
            missing = [h for h in area.hosts if self.inv.hosts[h].kind != "area"]
            problems += [f"host '{h}' of area '{area.name}' is not an area host" for h in missing]
        if self.inv.edge is None:
            problems.append("the inventory has no edge: the Internet cut has nowhere to go")
        if reach_nodes:
            problems += routing.node_problems(self.inv, [h for a in self.areas for h in a.hosts])
        if problems:
            raise UserError(*problems)
        final = {a.name: AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                                   quarantined={s.qualified for s in a.sub_areas}) for a in self.areas}
        self.applier.check_lockout(self.applier.planned_with(final))

    def stages(self) -> list[StageSpec]:
        """The stages this run applies before the sub-area loop: the table's, from ``req.first`` up to
        ``req.through``."""
        return [s for s in self._specs() if self.req.first <= (s.number or 0) <= self.req.through]

    def _specs(self) -> list[StageSpec]:
        """Every stage before the sub-area loop, from the phase table (``containment.table``), each one
        play for every area."""
        edge = self.inv.edge.name if self.inv.edge else ""
        hosts = {a.name: list(a.hosts) for a in self.areas}
        where = {Where.EDGE: {a.name: [edge] for a in self.areas},
                 Where.GATEWAY: {a.name: [a.gateway] for a in self.areas},
                 Where.AREA_HOSTS: hosts}
        brief = Brief(areas=", ".join(self.names), edge=edge,
                      gateways=", ".join(dict.fromkeys(a.gateway for a in self.areas)),
                      flows=sum(len(a.critical_flows) for a in self.areas), vectors=", ".join(map(str, self.vectors)),
                      hosts=sum(map(len, hosts.values())),
                      mobile=", ".join(s.qualified for a in self.areas for s in a.mobile_segments),
                      mobile_at=", ".join(dict.fromkeys(a.gateway for a in self.areas if a.mobile_segments)))
        specs = []
        for p in STAGES:
            per_area = where[p.where]
            targets = list(dict.fromkeys(t for ts in per_area.values() for t in ts))
            specs.append(StageSpec(p.name, p.playbook, targets, p.summary(brief), host_level=p.host_level,
                                   number=p.number, area_targets=per_area))
        return specs

    def offline(self) -> list[tuple[str, str, dict[str, Policy]]]:
        """The plan without reaching a host: for each stage (label, summary), the policy each of its targets
        would get, each stage from the state the ones before it leave; the sub-area loop at its worst case,
        every sub-area quarantined. Nothing is run, journaled or locked."""
        states = self.applier.states()
        out = []
        for spec in self.stages():
            states = {**states, **{n: containment_stage(spec.name).transition(states[n], None) for n in self.names}}
            planned = self.applier.planned(states)
            out.append((spec.label, spec.summary, {t: planned[t] for t in spec.targets}))
        loop = SUBAREA_LOOP
        worst = dict(states)
        for area in self.areas:
            for sub_area in area.sub_areas:
                worst[area.name] = loop.transition(worst[area.name], sub_area.qualified)
        planned = self.applier.planned(worst)
        gateways = list(dict.fromkeys(a.gateway for a in self.areas if a.sub_areas))
        out.append((f"{loop.number}. {loop.name}", "at worst, every sub-area quarantined",
                    {g: planned[g] for g in gateways}))
        return out

    # -- applying ----------------------------------------------------------------------------------

    def _next_state(self, stage: str, quarantine: dict[str, set[str]] | None = None) -> dict[str, AreaState]:
        """Each area's state after ``stage``, by the phase table's transition (the sub-area stage: only
        the areas with sub-areas to quarantine)."""
        phase = containment_stage(stage)
        if phase.per_sub_area:
            out = {}
            for name, subs in (quarantine or {}).items():
                st = self.state[name]
                for sub_area in sorted(subs):
                    st = phase.transition(st, sub_area)
                out[name] = st
            return out
        return {name: phase.transition(st, None) for name, st in self.state.items()}

    def _apply(self, spec: StageSpec, new_states: dict[str, AreaState],
               tolerate_host_failures: bool = False) -> dict[str, StageOutcome]:
        outcomes = self.applier.apply(spec, new_states, tolerate_host_failures)
        self.state.update(new_states)
        return outcomes

    # -- the whole run ------------------------------------------------------------------------------

    def _event(self, kind: EventKind, area: str, **detail: object) -> None:
        self.journal.timeline.add(self.incident.id, kind, self.req.operator, area, **detail)

    def _lock_all(self) -> list[str]:
        """Every area's lock, or none: a lock held elsewhere releases those taken and raises."""
        taken: list[str] = []
        try:
            for name in self.names:
                self.journal.locks.acquire(name, self.incident.id, self.req.operator, self.applier.token)
                taken.append(name)
        except UserError:
            for name in taken:
                self.journal.locks.release(name)
            raise
        return taken

    def run(self) -> list[ContainReport]:
        """Contain every area; one report per area, in the order given. The outcome, or the failure, is
        published as the decision the crisis cell now needs (a real run only)."""
        try:
            reports = self._contain()
        except (ContainmentFailed, RunnerError) as exc:
            self._decision("containment FAILED", [str(exc)],
                           "what to cut by hand where irm could not (see 'irm status')")
            raise
        self._decision(outcome(reports), [summary(r) for r in reports], next_decision(reports, self.names))
        return reports

    def _decision(self, event: str, done: list[str], decision: str) -> None:
        if not self.req.dry_run:
            self.events.publish(DecisionNeeded(self.incident.id, event, tuple(self.names), tuple(done), decision,
                                               self.req.operator))

    def _contain(self) -> list[ContainReport]:
        started = time.monotonic()
        started_at = datetime.now(UTC)
        reports = {n: ContainReport(area=n, incident_id=self.incident.id, dry_run=self.req.dry_run)
                   for n in self.names}
        self.applier.dry_states = self.applier.states()
        if not self.req.dry_run:
            self.applier.token = self.journal.locks.start_run(self.incident.id, "contain", ",".join(self.names),
                                                              self.req.operator)
        try:
            taken = self._lock_all()
        except UserError:
            self.journal.locks.end_run(self.applier.token) if not self.req.dry_run else None
            raise
        try:
            self._reread()
            for name in self.names:
                if not self.req.dry_run:
                    stale = self.journal.stages.interrupt_stale(self.incident.id, name, (self.phase,),
                                                                self.req.operator)
                    if stale:
                        self.events.say(f"a previous run was killed during {', '.join(stale)} of {name}: "
                                        "redoing it")
                self._event(EventKind.CONTAINMENT_STARTED, name, dry_run=self.req.dry_run,
                            started_at=started_at.isoformat(), token=self.applier.token,
                            take_over=self.req.take_over)
            self.preflight()
            for spec in self.stages():
                outcomes = self._apply(spec, self._next_state(spec.name), tolerate_host_failures=True)
                for name, outcome in outcomes.items():
                    reports[name].stages.append(outcome)
                    if containment_stage(spec.name).first_cut:
                        # the first cut: when the edge's new ruleset took effect (or the stage, if unchanged)
                        reports[name].first_cut_seconds = (
                            datetime.fromisoformat(outcome.first_applied_at) - started_at).total_seconds() \
                            if outcome.first_applied_at else time.monotonic() - started
            upfront = {name: set(subs) - self.state[name].quarantined for name, subs in self.req.quarantine.items()
                       if name in self.names}
            if any(upfront.values()):
                self._quarantine({n: subs for n, subs in upfront.items() if subs}, reports)
            if self.req.loop:
                self._subarea_loop(reports)
            self._retry_unreachable(reports)
            for name, report in reports.items():
                report.quarantined = sorted(self.state[name].quarantined)
                report.total_seconds = time.monotonic() - started
                self._event(EventKind.CONTAINMENT_FINISHED, name, dry_run=self.req.dry_run,
                            spread_stopped=report.spread_stopped, quarantined=report.quarantined,
                            changed=sorted(report.changed_hosts), first_cut_seconds=report.first_cut_seconds,
                            total_seconds=report.total_seconds, unreachable=report.unreachable,
                            host_failures=report.host_failures)
            return list(reports.values())
        except ContainmentFailed as exc:
            for name in self.names:
                self._event(EventKind.CONTAINMENT_FAILED, name, reason=str(exc), dry_run=self.req.dry_run)
            raise
        except UserError as exc:
            for name in self.names:
                self._event(EventKind.CONTAINMENT_REFUSED, name, reason=str(exc))
            raise
        finally:
            for name in taken:
                self.journal.locks.release(name)
            if not self.req.dry_run:
                self.journal.locks.end_run(self.applier.token)

    def _retry_unreachable(self, reports: dict[str, ContainReport]) -> None:
        """Hosts skipped by a host-level stage get their area's host policy as soon as they answer: at the
        end of the run, and at every re-run of ``irm contain``. Those that still do not answer are named."""
        if self.req.dry_run:
            for report in reports.values():
                report.unreachable = sorted({h for o in report.stages for h in o.skipped})
                report.host_failures = {h: why for o in report.stages for h, why in o.failed.items()}
            return
        rows = self.journal.hosts.rows(self.incident.id)
        pending = {a.name: [h for h in a.hosts if (h in rows and rows[h]["reach"] == "unreachable")
                            or h in {f for o in reports[a.name].stages if o.name == HOST_STAGE.name
                                     for f in o.failed}]
                   for a in self.areas if self.state[a.name].vectors_blocked}
        pending = {name: hosts for name, hosts in pending.items() if hosts}
        if pending:
            every = [h for hosts in pending.values() for h in hosts]
            self.events.say(f"retrying {len(every)} host(s) not reached or failed: {', '.join(every)}")
            vectors = next(s for s in self._specs() if s.name == HOST_STAGE.name)
            retry = StageSpec(vectors.name, vectors.playbook, every, f"retry: {vectors.summary}", host_level=True,
                              number=vectors.number, area_targets=pending)
            outcomes = self._apply(retry, {name: self.state[name] for name in pending}, tolerate_host_failures=True)
            for name, outcome in outcomes.items():
                reports[name].stages.append(outcome)
        rows = self.journal.hosts.rows(self.incident.id)
        planned = self.applier.planned(self.applier.states())
        for area in self.areas:
            report = reports[area.name]
            report.unreachable = sorted(h for h in area.hosts if h in rows and rows[h]["reach"] == "unreachable")
            report.host_failures = {h: f"enforces {fp}, not the planned policy"
                                    for h, fp in not_as_planned(rows, planned, list(area.hosts)).items()}

    def _detections(self, since: datetime) -> list[Detection]:
        return [d for d in self.source.detections(since) if d.area in self.names]

    def _quarantine(self, new: dict[str, set[str]], reports: dict[str, ContainReport]) -> None:
        """Quarantine each area's ``new`` sub-areas at its gateway: one stage, journaled per area."""
        stage = SUBAREA_LOOP
        gateways = {name: [self.inv.area(name).gateway] for name in new}
        at = list(dict.fromkeys(g for gs in gateways.values() for g in gs))
        spec = StageSpec(stage.name, stage.playbook, at, "quarantine " + ", ".join(
            sorted(s for subs in new.values() for s in subs)) + " at " + ", ".join(at),
            number=stage.number, area_targets=gateways)
        for name, outcome in self._apply(spec, self._next_state(stage.name, new)).items():
            reports[name].stages.append(outcome)
            self._event(EventKind.SUBAREA_QUARANTINED, name, sub_areas=sorted(new[name]), dry_run=self.req.dry_run)

    def _boundary_drops(self) -> list[Drop]:
        """Read the boundaries' drop counters now: each rise from a sub-area the loop has not quarantined
        is journaled and told; a boundary that cannot be read is said (once), never taken for silence."""
        assert self.sensor is not None
        # only a sub-area still connected can spread: a quarantined one's drops, and a mobile segment's (cut
        # whole by the mobile stage, never a sub-area to quarantine), are the boundary doing its job
        connected = {s.qualified for a in self.areas for s in a.sub_areas
                     if s.qualified not in self.state[a.name].quarantined}
        skip = {s.qualified for a in self.areas for s in a.segments} - connected
        drops = [d for d in self.sensor.poll(skip=skip) if d.detection.area in self.names]
        for d in drops:
            self._event(EventKind.BOUNDARY_DROPS, str(d.detection.area), segment=str(d.detection.segment),
                        host=d.detection.host, packets=d.packets, total=d.total)
            self.events.say(f"boundary {d.detection.host} dropped {d.packets} worm attempt(s) from "
                            f"{d.detection.segment}")
        for problem in sorted(set(self.sensor.problems(datetime.now(UTC))) - self._sensor_said):
            self.events.say(f"{problem}: the sub-area loop goes on with the other sources")
        self._sensor_said = set(self.sensor.problems(datetime.now(UTC)))
        return drops

    def _subarea_loop(self, reports: dict[str, ContainReport]) -> None:
        since = watch_start(self.incident.opened_at, self.req.lookback)
        sub_areas = {a.name: {s.qualified for s in a.sub_areas} for a in self.areas}
        loop_start = last_change = time.monotonic()
        seen: dict[str, int] = dict.fromkeys(self.names, 0)
        next_read = time.monotonic() if self.sensor is not None and not self.req.dry_run else float("inf")
        while True:
            dets = self._detections(since)
            self.events.publish(Detections(dict(Counter(d.segment or "?" for d in dets))))
            for name in self.names:
                mine = [d for d in dets if d.area == name]
                reports[name].detections = len(mine)
                if len(mine) > seen[name]:
                    self._event(EventKind.DETECTIONS, name, count=len(mine) - seen[name],
                                hosts=sorted({d.host for d in mine[seen[name]:]}),
                                items=[{"time": d.time.isoformat(), "host": d.host, "segment": d.segment,
                                        "signature": d.signature, "action": d.action,
                                        "source_address": d.source_address} for d in mine[seen[name]:]])
                    seen[name] = len(mine)
                    last_change = time.monotonic()
            drops: list[Drop] = []
            if time.monotonic() >= next_read:
                drops = self._boundary_drops()
                next_read = time.monotonic() + self.req.sensor_interval
            if drops:
                last_change = time.monotonic()
            new = {name: {d.segment for d in [*dets, *(x.detection for x in drops)]
                          if d.area == name and d.segment in sub_areas[name]}
                   - self.state[name].quarantined for name in self.names}
            new = {name: subs for name, subs in new.items() if subs}
            if new:
                self._quarantine(new, reports)
                last_change = time.monotonic()
            if self.req.dry_run:
                for report in reports.values():
                    report.spread_stopped = None
                return
            if time.monotonic() - last_change >= self.req.quiet_window:
                for name, report in reports.items():
                    report.spread_stopped = True
                    self._event(EventKind.SPREAD_STOPPED, name, quiet_window=self.req.quiet_window,
                                detections=report.detections)
                dropped = " and no boundary dropped a new attempt from a sub-area still connected" \
                    if self.sensor is not None else ""
                self.events.say(f"no new detection{dropped} for {self.req.quiet_window:.0f}s: the spread has stopped")
                return
            if time.monotonic() - loop_start >= self.req.max_wait:
                for name, report in reports.items():
                    report.spread_stopped = False
                    self._event(EventKind.SPREAD_NOT_STOPPED, name, waited=self.req.max_wait,
                                detections=report.detections)
                return
            time.sleep(self.req.poll)


def summary(r: ContainReport) -> str:
    """One line of what a containment did, for the crisis cell."""
    cut = f"first cut after {r.first_cut_seconds:.1f}s, " if r.first_cut_seconds is not None else ""
    return (f"{r.area}: {cut}quarantined "
            f"{', '.join(r.quarantined) or 'no sub-area'}"
            + (f"; NOT reached: {', '.join(r.unreachable)}" if r.unreachable else "")
            + (f"; host rules NOT in place on {', '.join(sorted(r.host_failures))}" if r.host_failures else ""))


def outcome(reports: list[ContainReport]) -> str:
    if any(r.spread_stopped is False for r in reports):
        return "containment done, the spread has NOT stopped"
    return "containment done, the spread has stopped" if reports and all(r.spread_stopped for r in reports) \
        else "containment done"


def next_decision(reports: list[ContainReport], names: list[str]) -> str:
    if any(r.spread_stopped is False for r in reports):
        return "widen the perimeter or cut further (detections keep coming)"
    return ("the remediation plan to validate, then 'irm remediate --area " + "' / '".join(names) + "'")
