"""Containment of one area, in the IRM #1 order, every step journaled.

1. Internet cut at the edge; 2. isolation at the area gateway (critical flows kept open); 3. the
propagation vectors blocked on every area host; 4. the mobile segments blocked at the gateway;
5. removable storage blocked on area hosts; 6. the sub-area loop: every sub-area that shows
infections is quarantined, until no new detection appears for a quiet window.

Chokepoints come first, so the time to the first cut does not grow with the area. Before each stage
the whole planned policy set is checked against the operator's management path; each stage applies
commit-confirmed (a dead-man timer restores the previous ruleset unless irm reconnects and confirms).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from orchestrator import checks, mgmt_probe, runner
from orchestrator.detection import Detection, DetectionSource
from orchestrator.errors import ContainmentFailed, RunnerError, UserError
from orchestrator.events import EventKind
from orchestrator.incident import Vector
from orchestrator.inventory import Inventory, hosts_by_os
from orchestrator.journal import BOUNDARIES_LOCK, Incident, Journal
from orchestrator.phases import CONTAINMENT, Where, containment_stage
from orchestrator.posture import AreaState, Policy, not_as_planned, policies


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
class StageSpec:
    name: str
    playbook: str
    targets: list[str]  # hosts whose firewall policy this stage applies, commit-confirmed
    summary: str
    extravars: dict[str, Any] = field(default_factory=dict)  # more for the playbook (recovery's mobile step)
    host_level: bool = False  # targets are area hosts: an unreachable one is skipped, not waited on


@dataclass
class StageOutcome:
    name: str
    targets: list[str]
    result: runner.RunResult
    first_applied_at: str | None = None  # when the first host's new ruleset took effect
    skipped: list[str] = field(default_factory=list)  # unreachable before the stage: boundary protection only
    failed: dict[str, str] = field(default_factory=dict)  # host -> why (host-level stages go on without it)

    @property
    def changed(self) -> list[str]:
        return sorted(h.host for h in self.result.hosts.values() if h.changed)


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


class ContainObserver(runner.RunObserver, Protocol):
    def stage(self, name: str, state: str, targets: list[str], detail: str = "") -> None: ...

    def infections(self, by_segment: dict[str, int]) -> None: ...

    def message(self, text: str) -> None: ...


class _Quiet:
    def on_task(self, play: str, task: str) -> None:
        return None

    def on_host(self, result: runner.HostResult, event: str) -> None:
        return None

    def stage(self, name: str, state: str, targets: list[str], detail: str = "") -> None:
        return None

    def infections(self, by_segment: dict[str, int]) -> None:
        return None

    def message(self, text: str) -> None:
        return None


class Containment:
    phase = "containment"  # the journal's phase for this object's stages

    def __init__(self, req: ContainRequest, inv: Inventory, journal: Journal, source: DetectionSource,
                 observer: ContainObserver | None = None, *, run: runner.PlaybookRunner = runner.run_playbook,
                 probe: runner.ManagementProber = mgmt_probe.probe) -> None:
        self.req = req
        self.run_playbook = run
        self.probe_management = probe
        self.inv = inv
        self.journal = journal
        self.source = source
        self.ui: ContainObserver = observer or _Quiet()
        self.area = inv.area(req.area)
        self.incident: Incident = journal.open_incident_for(req.incident_id)
        self.vectors: list[Vector] = list(self.incident.spec.vectors)
        self.state = AreaState.from_scopes(self.area.name, journal.postures(self.incident.id))
        self._dry_states: dict[str, AreaState] = {}
        self.token = "dry-run"  # each run that changes something gets its own (its timers carry it)

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
        self._check_lockout(self._planned({**self._states(), self.area.name: final}))

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
        return [StageSpec(p.name, p.playbook, where[p.where], summary[p.name], host_level=p.where == Where.AREA_HOSTS)
                for p in CONTAINMENT if p.name in summary]

    def _states(self) -> dict[str, AreaState]:
        scopes = self.journal.postures(self.incident.id)
        return {a: AreaState.from_scopes(a, scopes) for a in self.inv.areas}

    def _planned(self, states: dict[str, AreaState]) -> dict[str, Policy]:
        return policies(self.inv, self.vectors, states)

    def _check_lockout(self, planned: dict[str, Policy]) -> None:
        problems = checks.check_management(self.inv, planned)
        if problems:
            raise UserError(*problems, "nothing was applied")

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

    @contextlib.contextmanager
    def _shared(self, spec: StageSpec) -> Iterator[None]:
        """Edge, core and gateway policies are built from every area's postures: a change to one is made
        under the journal-wide lock, held from reading the state to writing the postures."""
        if spec.host_level or self.req.dry_run:
            yield
            return
        with self.journal.lock(BOUNDARIES_LOCK, self.incident.id, self.req.operator, self.token,
                               wait=self.req.lock_wait):
            yield

    def _probe(self, spec: StageSpec) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """The management endpoints that answer now, per play host (what its confirmation must reach
        again), and the hosts that do not answer at all."""
        answered, down = self.probe_management(checks.reach_targets(self.inv, spec.targets))
        reach: dict[str, list[dict[str, Any]]] = {}
        for endpoint in answered:
            reach.setdefault(str(endpoint["via"]), []).append(endpoint)
        return reach, down

    def _apply(self, spec: StageSpec, new_state: AreaState, tolerate_host_failures: bool = False) -> StageOutcome:
        with self._shared(spec):
            return self._apply_locked(spec, new_state, tolerate_host_failures)

    def _apply_locked(self, spec: StageSpec, new_state: AreaState, tolerate_host_failures: bool) -> StageOutcome:
        states = {**self._states(), self.area.name: new_state} if not self.req.dry_run else {
            **self._dry_states, self.area.name: new_state}
        planned = self._planned(states)
        self._check_lockout(planned)
        reach, down = self._probe(spec)
        targets = [t for t in spec.targets if t not in down] if spec.host_level else list(spec.targets)
        skipped = sorted(set(spec.targets) - set(targets))
        behind = sorted(down - set(spec.targets))
        if not self.req.dry_run:
            self.journal.set_reach(self.incident.id, self.area.name, skipped + behind, "unreachable", spec.name)
            self.journal.set_reach(self.incident.id, self.area.name,
                                   sorted({str(e["host"]) for es in reach.values() for e in es}), "reached", spec.name)
        if skipped or behind:
            self.ui.message(f"{spec.name}: not reached before the change: {', '.join(skipped + behind)} "
                            "(protected by the boundary only; retried at the end)")
        fingerprints = {h: planned[h].fingerprint for h in targets}
        self.ui.stage(spec.name, "running", targets, spec.summary)
        stage_id = self.journal.start_stage(self.incident.id, self.phase, self.area.name, spec.name,
                                            ",".join(targets), self.req.dry_run, self.req.operator,
                                            summary=spec.summary, planned=fingerprints, token=self.token,
                                            unreachable=skipped + behind)
        empty = runner.RunResult(playbook=spec.playbook, status="successful", rc=0, check=self.req.dry_run)
        outcome = StageOutcome(spec.name, targets, empty, skipped=skipped)
        unreachable_boundaries = [t for t in spec.targets if t in down and not spec.host_level]
        if unreachable_boundaries:
            detail = (f"{', '.join(unreachable_boundaries)} does not answer on its management path: nothing was "
                      "applied there")
            self.journal.end_stage(stage_id, "failed", failed=unreachable_boundaries, reason=detail)
            self.ui.stage(spec.name, "failed", spec.targets, detail)
            raise ContainmentFailed(f"stage {spec.name} failed: {detail}")
        if targets:
            outcome.result = self._run(spec, stage_id, targets, planned, fingerprints, reach)
        result = outcome.result
        missing = sorted(set(targets) - set(result.hosts))
        failed = sorted(set(result.failed_hosts) | set(missing))
        live = {h: str(r.facts.get("irm_live_fingerprint", "unknown")) for h, r in result.hosts.items()}
        if failed and not (spec.host_level and tolerate_host_failures):
            detail = self._after_failure(spec, failed, result, reach)
            self.journal.end_stage(stage_id, "failed", failed=failed, reason=detail, live=live)
            self.ui.stage(spec.name, "failed", spec.targets, detail)
            raise ContainmentFailed(f"stage {spec.name} failed on {', '.join(failed)}: {detail}")
        outcome.failed = {h: " | ".join(result.hosts[h].failures) if h in result.hosts else "no result"
                          for h in failed}
        confirmed = {h: fp for h, fp in fingerprints.items() if h not in failed}
        rows = self.journal.host_rows(self.incident.id)
        actual_failed = {h: self._enforced(h, fingerprints[h], result.hosts.get(h), rows) for h in failed}
        applied = sorted(str(h.facts["irm_applied_at"]) for h in result.hosts.values() if "irm_applied_at" in h.facts)
        outcome.first_applied_at = applied[0] if applied else None
        postures = new_state.scopes(self.area) if not self.req.dry_run else None
        actual = {**confirmed, **actual_failed} if not self.req.dry_run else None
        self.journal.end_stage(stage_id, "failed" if failed else "done", postures=postures, fingerprints=actual,
                               changed=outcome.changed, failed=failed, reason="; ".join(
                                   f"{h}: {why}" for h, why in outcome.failed.items()) or None,
                               first_applied_at=outcome.first_applied_at,
                               last_applied_at=applied[-1] if applied else None)
        self.ui.stage(spec.name, "failed" if failed else "done", targets,
                      f"{len(outcome.changed)} changed" + (f", failed on {', '.join(failed)}" if failed else ""))
        if self.req.dry_run:
            self._dry_states[self.area.name] = new_state
        self.state = new_state
        return outcome

    @staticmethod
    def _enforced(host: str, planned: str, result: runner.HostResult | None, rows: dict[str, dict[str, Any]]) -> str:
        """What a host a stage failed on enforces, as far as irm can know: confirmed, it keeps the planned
        table (a later task failed); applied but unconfirmed, its timer restores the last confirmed one
        (journaled before); otherwise what it reported live."""
        if result is None:
            return "unknown"
        if result.facts.get("irm_confirmed"):
            return planned
        live = str(result.facts.get("irm_live_fingerprint", "unknown"))
        if live == planned:
            return str(rows.get(host, {}).get("fingerprint") or "absent")
        return live

    def _run(self, spec: StageSpec, stage_id: int, targets: list[str], planned: dict[str, Policy],
             fingerprints: dict[str, str], reach: dict[str, list[dict[str, Any]]]) -> runner.RunResult:
        extravars: dict[str, Any] = {
            "irm_targets": ",".join(targets),
            **hosts_by_os(self.inv, targets),
            "irm_policies": {h: planned[h].model_dump(mode="json") for h in targets},
            "irm_fingerprints": {h: fp for h, fp in fingerprints.items() if fp != "absent"},
            "irm_token": self.token,
            "irm_takeover_tokens": self.journal.dead_tokens(),
            "firewall_policy_confirm_timeout": self.req.confirm_timeout,
            "irm_reach": reach,
            **spec.extravars,
        }
        try:
            result = self.run_playbook(spec.playbook, self.req.inventory, extravars=extravars,
                                         check=self.req.dry_run, diff=self.req.dry_run, observer=self.ui)
        except RunnerError as exc:
            self.journal.end_stage(stage_id, "failed", failed=targets, reason=str(exc))
            self.ui.stage(spec.name, "failed", targets, str(exc))
            raise ContainmentFailed(f"stage {spec.name} failed: {exc}; the previous rules stay in place "
                                    "(any armed timer restores the last confirmed ruleset)") from None
        self.journal.host_results(stage_id, [
            {"host": h.host, "status": h.status, "ok": h.ok, "changed": h.changed, "failed": h.failed,
             "unreachable": h.unreachable, "failures": h.failures} for h in result.hosts.values()])
        return result

    def _after_failure(self, spec: StageSpec, failed: list[str], result: runner.RunResult,
                       reach: dict[str, list[dict[str, Any]]]) -> str:
        reasons = "; ".join(f"{h}: {' | '.join(result.hosts[h].failures) if h in result.hosts else 'no result'}"
                            for h in failed)
        if self.req.dry_run:
            return reasons
        # The dead-man timer restores the last confirmed ruleset on any host that did not confirm: wait
        # for it, then prove the management path is back with a fresh SSH connection to every host that
        # answered before the change.
        self.ui.message(f"waiting {self.req.confirm_timeout}s for the dead-man timer on {', '.join(failed)}")
        time.sleep(self.req.confirm_timeout + 2)
        expected = sorted(set(failed) | {str(e["host"]) for h in failed for e in reach.get(h, [])})
        try:
            back = self.run_playbook("reach", self.req.inventory, extravars={"irm_targets": ",".join(expected)})
        except RunnerError as exc:
            return f"{reasons}; SSH could not be checked ({exc}): check {', '.join(expected)} by hand"
        answering = sorted(h for h, r in back.hosts.items() if r.status == "ok")
        self.journal.event(self.incident.id, EventKind.LOCKOUT_REVERTED, self.req.operator, self.area.name,
                           stage=spec.name, hosts=failed, reachable_again=answering, reasons=reasons)
        still = sorted(set(expected) - set(answering))
        tail = (f"the dead-man timer restored the last confirmed ruleset; SSH answers again on {len(answering)} "
                f"host(s) ({', '.join(answering)})"
                if not still else f"SSH still fails on {', '.join(still)}: check these hosts by hand")
        return f"{reasons}; {tail}"

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> ContainReport:
        started = time.monotonic()
        started_at = datetime.now(UTC)
        report = ContainReport(area=self.area.name, incident_id=self.incident.id, dry_run=self.req.dry_run)
        self._dry_states = self._states()
        if not self.req.dry_run:
            self.token = self.journal.start_run(self.incident.id, "contain", self.area.name, self.req.operator)
        try:
            self.journal.acquire_lock(self.area.name, self.incident.id, self.req.operator, self.token)
        except UserError:
            self.journal.end_run(self.token) if not self.req.dry_run else None
            raise
        try:
            self._reread()
            if not self.req.dry_run:
                stale = self.journal.interrupt_stale(self.incident.id, self.area.name, (self.phase,),
                                                     self.req.operator)
                if stale:
                    self.ui.message(f"a previous run was killed during {', '.join(stale)}: redoing it")
            self.journal.event(self.incident.id, EventKind.CONTAINMENT_STARTED, self.req.operator, self.area.name,
                               dry_run=self.req.dry_run, started_at=started_at.isoformat(), token=self.token)
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
                self.journal.end_run(self.token)

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
            retry = StageSpec("vectors", vectors.playbook, pending, f"retry: {vectors.summary}", host_level=True)
            report.stages.append(self._apply(retry, self.state, tolerate_host_failures=True))
        rows = self.journal.host_rows(self.incident.id)
        report.unreachable = sorted(h for h in self.area.hosts if rows.get(h, {}).get("reach") == "unreachable")
        report.host_failures = {h: f"enforces {fp}, not the planned policy" for h, fp in
                                not_as_planned(rows, self._planned(self._states()), list(self.area.hosts)).items()}

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
                spec = StageSpec("subarea", containment_stage("subarea").playbook, [self.area.gateway],
                                 f"quarantine {', '.join(sorted(new))} at {self.area.gateway}")
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
