"""Containment of one area, in the IRM #1 order, every step journaled.

The stages are the table's (``containment.table``): 1. Internet cut at the edge; 2. isolation at the
area gateway (critical flows kept open); 3. the propagation vectors and removable storage blocked on
every area host; 4. the mobile segments blocked at the gateway; 5. the sub-area loop: every sub-area
that shows infections is quarantined, until no new detection appears for a quiet window. Each stage
is applied by the shared ``StageApplier``.

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
from typing import Protocol

from orchestrator.containment.table import CONTAINMENT, containment_stage
from orchestrator.core import checks, mgmt_probe, runner
from orchestrator.core.applier import Quiet, StageApplier, StageObserver, StageOutcome, StageSpec
from orchestrator.core.detection import Detection, DetectionSource
from orchestrator.core.errors import ContainmentFailed, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.phases import Where
from orchestrator.core.posture import AreaState, not_as_planned


@dataclass
class ContainRequest:
    inventory: Path
    area: str
    operator: str
    incident_id: int | None = None
    dry_run: bool = False
    confirm_timeout: int = 60
    quiet_window: float = 30.0
    max_wait: float = 900.0
    poll: float = 1.0
    lookback: timedelta = timedelta(hours=24)
    loop: bool = True
    lock_wait: float = 600.0  # how long a change to shared boundaries waits for another run's


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


class ContainObserver(StageObserver, Protocol):
    def infections(self, by_segment: dict[str, int]) -> None: ...


class Containment:
    phase = "containment"  # the journal's phase for this object's stages

    def __init__(self, req: ContainRequest, inv: Inventory, journal: Journal, source: DetectionSource,
                 observer: ContainObserver | None = None, *, run: runner.PlaybookRunner = runner.run_playbook,
                 probe: runner.ManagementProber = mgmt_probe.probe) -> None:
        self.req = req
        self.inv = inv
        self.journal = journal
        self.source = source
        self._ui: ContainObserver = observer or Quiet()
        self.area = inv.area(req.area)
        self.incident: Incident = journal.open_incident_for(req.incident_id)
        self.vectors: list[Vector] = list(self.incident.spec.vectors)
        self.state = AreaState.from_scopes(self.area.name, journal.postures(self.incident.id))
        self.applier = StageApplier(inv, journal, self.incident, self.area, req.inventory, req.operator, self._ui,
                                    run, probe, self.phase, self.vectors, dry_run=req.dry_run,
                                    confirm_timeout=req.confirm_timeout, lock_wait=req.lock_wait)

    @property
    def ui(self) -> ContainObserver:
        return self._ui

    @ui.setter
    def ui(self, observer: ContainObserver) -> None:
        """The live view, set once it is on screen; the stage applier reports to it too."""
        self._ui = self.applier.ui = observer

    def _reread(self) -> None:
        """The state again, under the area lock: another operator may have moved it since the plan was
        shown (the prompt sits in between)."""
        self.state = AreaState.from_scopes(self.area.name, self.journal.postures(self.incident.id))

    # -- planning ----------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Everything that must hold before the first change; raises with every problem found."""
        problems = checks.check_critical_flows(self.inv, self.area, self.vectors)
        missing = [h for h in self.area.hosts if self.inv.hosts[h].kind != "area"]
        problems += [f"host '{h}' of area '{self.area.name}' is not an area host" for h in missing]
        if self.inv.edge is None:
            problems.append("the inventory has no edge: the Internet cut has nowhere to go")
        if problems:
            raise UserError(*problems)
        final = AreaState(posture="isolated", vectors_blocked=True, mobile_blocked=True,
                          quarantined={s.qualified for s in self.area.sub_areas})
        self.applier.check_lockout(self.applier.planned_with(final))

    def stages(self) -> list[StageSpec]:
        """The stages before the sub-area loop, from the phase table (``phases.CONTAINMENT``)."""
        gw = self.area.gateway
        hosts = list(self.area.hosts)
        edge = self.inv.edge.name if self.inv.edge else ""
        where = {Where.EDGE: [edge], Where.GATEWAY: [gw], Where.AREA_HOSTS: hosts}
        summary = {
            "internet_cut": f"cut {self.area.name} from the Internet at {edge}",
            "isolate": f"isolate {self.area.name} at {gw}, keeping {len(self.area.critical_flows)} validated "
                       "critical flow(s) and management open",
            "vectors": f"block {', '.join(map(str, self.vectors))} and removable storage on {len(hosts)} area hosts",
            "mobile": f"block mobile segments {', '.join(s.qualified for s in self.area.mobile_segments) or '(none)'}"
                      f" at {gw}",
        }
        return [StageSpec(p.name, p.playbook, where[p.where], summary[p.name], host_level=p.where == Where.AREA_HOSTS,
                          number=p.number) for p in CONTAINMENT if p.name in summary]

    # -- applying ----------------------------------------------------------------------------------

    def _next_state(self, stage: str, quarantine: set[str] | None = None) -> AreaState:
        """The area's state after ``stage``, by the phase table's transition."""
        phase = containment_stage(stage)
        if stage == "subarea":
            st = self.state
            for sub_area in sorted(quarantine or ()):
                st = phase.transition(st, sub_area)
            return phase.transition(st, None) if not quarantine else st
        return phase.transition(self.state, None)

    def _apply(self, spec: StageSpec, new_state: AreaState, tolerate_host_failures: bool = False) -> StageOutcome:
        outcome = self.applier.apply(spec, new_state, tolerate_host_failures)
        self.state = new_state
        return outcome

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> ContainReport:
        started = time.monotonic()
        started_at = datetime.now(UTC)
        report = ContainReport(area=self.area.name, incident_id=self.incident.id, dry_run=self.req.dry_run)
        self.applier.dry_states = self.applier.states()
        if not self.req.dry_run:
            self.applier.token = self.journal.start_run(self.incident.id, "contain", self.area.name, self.req.operator)
        try:
            self.journal.acquire_lock(self.area.name, self.incident.id, self.req.operator, self.applier.token)
        except UserError:
            self.journal.end_run(self.applier.token) if not self.req.dry_run else None
            raise
        try:
            self._reread()
            if not self.req.dry_run:
                stale = self.journal.interrupt_stale(self.incident.id, self.area.name, (self.phase,),
                                                     self.req.operator)
                if stale:
                    self.ui.message(f"a previous run was killed during {', '.join(stale)}: redoing it")
            self.journal.event(self.incident.id, EventKind.CONTAINMENT_STARTED, self.req.operator, self.area.name,
                               dry_run=self.req.dry_run, started_at=started_at.isoformat(), token=self.applier.token)
            self.preflight()
            for spec in self.stages():
                outcome = self._apply(spec, self._next_state(spec.name), tolerate_host_failures=True)
                report.stages.append(outcome)
                if spec.name == "internet_cut":
                    # the first cut is when the edge's new ruleset took effect (or the stage, if unchanged)
                    cut = (datetime.fromisoformat(outcome.first_applied_at) - started_at).total_seconds() \
                        if outcome.first_applied_at else time.monotonic() - started
                    report.first_cut_seconds = cut
            if self.req.loop:
                self._subarea_loop(report)
            self._retry_unreachable(report)
            report.quarantined = sorted(self.state.quarantined)
            report.total_seconds = time.monotonic() - started
            self.journal.event(self.incident.id, EventKind.CONTAINMENT_FINISHED, self.req.operator, self.area.name,
                               dry_run=self.req.dry_run, spread_stopped=report.spread_stopped,
                               quarantined=report.quarantined, changed=sorted(report.changed_hosts),
                               first_cut_seconds=report.first_cut_seconds, total_seconds=report.total_seconds,
                               unreachable=report.unreachable, host_failures=report.host_failures)
            return report
        except ContainmentFailed as exc:
            self.journal.event(self.incident.id, EventKind.CONTAINMENT_FAILED, self.req.operator, self.area.name,
                               reason=str(exc))
            raise
        except UserError as exc:
            self.journal.event(self.incident.id, EventKind.CONTAINMENT_REFUSED, self.req.operator, self.area.name,
                               reason=str(exc))
            raise
        finally:
            self.journal.release_lock(self.area.name)
            if not self.req.dry_run:
                self.journal.end_run(self.applier.token)

    def _retry_unreachable(self, report: ContainReport) -> None:
        """Hosts skipped by a host-level stage get the area's host policy as soon as they answer: at the
        end of the run, and at every re-run of ``irm contain``. Those that still do not answer are named."""
        if self.req.dry_run:
            report.unreachable = sorted({h for o in report.stages for h in o.skipped})
            report.host_failures = {h: why for o in report.stages for h, why in o.failed.items()}
            return
        rows = self.journal.host_rows(self.incident.id)
        pending = [h for h in self.area.hosts if rows.get(h, {}).get("reach") == "unreachable"
                   or h in {f for o in report.stages if o.name == "vectors" for f in o.failed}]
        if pending and self.state.vectors_blocked:
            self.ui.message(f"retrying {len(pending)} host(s) not reached or failed: {', '.join(pending)}")
            vectors = next(s for s in self.stages() if s.name == "vectors")
            retry = StageSpec("vectors", vectors.playbook, pending, f"retry: {vectors.summary}", host_level=True,
                              number=vectors.number)
            report.stages.append(self._apply(retry, self.state, tolerate_host_failures=True))
        rows = self.journal.host_rows(self.incident.id)
        report.unreachable = sorted(h for h in self.area.hosts if rows.get(h, {}).get("reach") == "unreachable")
        planned = self.applier.planned(self.applier.states())
        report.host_failures = {h: f"enforces {fp}, not the planned policy"
                                for h, fp in not_as_planned(rows, planned, list(self.area.hosts)).items()}

    def _area_detections(self, since: datetime) -> list[Detection]:
        return [d for d in self.source.detections(since) if d.area == self.area.name]

    def _subarea_loop(self, report: ContainReport) -> None:
        since = datetime.fromisoformat(self.incident.opened_at) - self.req.lookback
        sub_areas = {s.qualified for s in self.area.sub_areas}
        loop_start = last_change = time.monotonic()
        seen = 0
        while True:
            dets = self._area_detections(since)
            report.detections = len(dets)
            self.ui.infections(dict(Counter(d.segment or "?" for d in dets)))
            if len(dets) > seen:
                new_hosts = sorted({d.host for d in dets[seen:]})
                self.journal.event(self.incident.id, EventKind.DETECTIONS, self.req.operator, self.area.name,
                                   count=len(dets) - seen, hosts=new_hosts,
                                   items=[{"time": d.time.isoformat(), "host": d.host, "segment": d.segment,
                                           "signature": d.signature, "action": d.action,
                                           "source_address": d.source_address} for d in dets[seen:]])
                seen = len(dets)
                last_change = time.monotonic()
            infected = {d.segment for d in dets if d.segment in sub_areas}
            new = infected - self.state.quarantined
            if new:
                stage = containment_stage("subarea")
                spec = StageSpec(stage.name, stage.playbook, [self.area.gateway],
                                 f"quarantine {', '.join(sorted(new))} at {self.area.gateway}", number=stage.number)
                report.stages.append(self._apply(spec, self._next_state("subarea", new)))
                self.journal.event(self.incident.id, EventKind.SUBAREA_QUARANTINED, self.req.operator, self.area.name,
                                   sub_areas=sorted(new), dry_run=self.req.dry_run)
                last_change = time.monotonic()
            if self.req.dry_run:
                report.spread_stopped = None
                return
            if time.monotonic() - last_change >= self.req.quiet_window:
                report.spread_stopped = True
                self.journal.event(self.incident.id, EventKind.SPREAD_STOPPED, self.req.operator, self.area.name,
                                   quiet_window=self.req.quiet_window, detections=len(dets))
                self.ui.message(f"no new detection for {self.req.quiet_window:.0f}s: the spread has stopped")
                return
            if time.monotonic() - loop_start >= self.req.max_wait:
                report.spread_stopped = False
                self.journal.event(self.incident.id, EventKind.SPREAD_NOT_STOPPED, self.req.operator, self.area.name,
                                   waited=self.req.max_wait, detections=len(dets))
                return
            time.sleep(self.req.poll)
