"""Recovery of one contained, remediated area, in the IRM #1 order, one monitored step at a time.

Preconditions are verified, never assumed: containment complete, every area host remediated and
verified (journal, then a fresh verification on the hosts), no detection in the area for a quiet
window, and a signed management approval by a listed approver other than the operator (four-eyes), made
after the area's last remediation (``approval``).

Steps, in this order, never skipped or reordered: 1. reopen the propagation traffic on the area
hosts; 2. reconnect the quarantined sub-areas, one at a time; 3. reconnect the mobile segments (and
lift the removable-storage block); 4. reconnect the area to the local network; 5. reconnect it to the
Internet. Each step is shown, confirmed, applied commit-confirmed, then soaked: the detection sources
are watched and the paths the step opened are probed. A new infection halts the recovery and puts the
previous posture back. The journal holds each step's row (start, end, operator, confirmation, soak);
a killed or interrupted recovery resumes at the step it was in, from the journal and the hosts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from orchestrator.core import checks, mgmt_probe, routing, runner
from orchestrator.core.applier import ApplierSettings, StageApplier, StageOutcome, StageSpec
from orchestrator.core.detection import Detection, DetectionSource
from orchestrator.core.errors import ContainmentFailed, RecoveryHalted, RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.holds import holders
from orchestrator.core.inventory import Inventory, hosts_by_os
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.phases import Where
from orchestrator.core.posture import AreaState, Policy
from orchestrator.core.stream import DecisionNeeded, EventStream
from orchestrator.core.yamlfile import excerpt
from orchestrator.crisis import notify
from orchestrator.recovery.table import RECOVERY, STEP_CHOICES, recovery_step, step_names
from orchestrator.remediation.phase import health_targets

# From the phase table (``recovery.table``): the steps' names, and the containment play that puts each
# step's change back (the mobile step's restores the gateway's block; removable storage stays allowed
# until the next containment of the area).
STEPS = tuple(p.name for p in RECOVERY)
ROLLBACK = {p.playbook: str(p.rollback) for p in RECOVERY}


class PathProber(Protocol):
    """The paths a step may open, and real traffic over the ones it opened (the lab's prober sends TCP
    between its namespaces; an inventory without one has none)."""

    def candidates(self, inv: Inventory) -> list[Any]: ...

    def probe(self, inv: Inventory, probes: list[Any]) -> list[Any]: ...


class NoPaths:
    def candidates(self, inv: Inventory) -> list[Any]:
        return []

    def probe(self, inv: Inventory, probes: list[Any]) -> list[Any]:
        return []


@dataclass
class RecoverRequest:
    inventory: Path
    area: str
    operator: str
    incident_id: int | None = None
    soak: float = 60.0
    quiet_window: float = 60.0
    poll: float = 1.0
    next_only: bool = False  # --step: the next step, then exit
    only: str | None = None  # --only STEP: refused unless it is the next one
    confirm_timeout: int = 60
    assume_yes: bool = False  # journaled: confirmed by --yes, or by the operator at the prompt
    take_over: bool = False  # --take-over: no compare-and-swap against the journal's last recorded tables


@dataclass
class Step:
    name: str  # vectors | subarea:<qualified> | subareas | mobile | lan | internet
    number: int
    title: str

    @property
    def label(self) -> str:
        return f"step {self.number} ({self.name})"


@dataclass
class StepPreview:
    """One step of a dry run: the rules it would remove and add, and what check mode found on each of
    its targets (None: the step changes nothing)."""

    step: Step
    changes: list[str]
    outcome: StageOutcome | None


@dataclass
class RecoveryPreview:
    area: str
    incident_id: int
    unmet: list[str]  # the preconditions a real run would refuse on
    steps: list[StepPreview] = field(default_factory=list)


@dataclass
class RecoveryReport:
    area: str
    incident_id: int
    resumed_at: str | None = None
    done: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    declined: str | None = None


DURATION_MAX = 7 * 86400.0  # a soak, a quiet window, a look-back window: at most a week


def parse_duration(text: str, what: str = "duration", minimum: float = 0.0, maximum: float = DURATION_MAX) -> float:
    """``60``, ``60s``, ``2m``, ``1h`` to seconds, between ``minimum`` and ``maximum`` (NaN and infinities
    are not durations)."""
    value = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(value[-1:])
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except (ValueError, OverflowError):
        raise UserError(f"{what} '{excerpt(text)}' is not a duration (e.g. 60, 60s, 2m)") from None
    if not math.isfinite(seconds) or not minimum <= seconds <= maximum:
        raise UserError(f"{what} '{excerpt(text)}' is not between {minimum:.0f}s and {maximum:.0f}s")
    return seconds


class Recovery:
    phase = "recovery-apply"  # the rows of the playbook runs; each step has its own "recovery" row

    def __init__(self, req: RecoverRequest, inv: Inventory, journal: Journal, source: DetectionSource,
                 events: EventStream | None = None,
                 confirm: Callable[[Step, list[str]], bool] | None = None, *,
                 run: runner.PlaybookRunner = runner.run_playbook,
                 probe: runner.ManagementProber = mgmt_probe.probe,
                 paths: PathProber | None = None) -> None:
        self.req = req
        self.inv = inv
        self.journal = journal
        self.source = source
        self.events = events or EventStream()  # what this run tells its listeners (core.stream)
        self.area = inv.area(req.area)
        self.incident: Incident = journal.incidents.open_for(req.incident_id)
        self.state = AreaState.from_scopes(self.area.name, journal.stages.postures(self.incident.id))
        self.applier = StageApplier(inv, journal, self.incident, ApplierSettings(
            req.inventory, req.operator, self.phase, tuple(self.incident.spec.vectors),
            confirm_timeout=req.confirm_timeout, take_over=req.take_over), self.events, run, probe)
        notify.listen(self.events, inv, journal)
        self.paths: PathProber = paths or NoPaths()
        self.confirm = confirm or (lambda step, changes: True)
        self._resumed: dict[str, dict[str, Any]] = {}  # interrupted step -> when it took effect, what it saw


    def _reread(self) -> None:
        """The state again, under the area lock: another operator may have moved it since the plan was
        shown (the prompt sits in between)."""
        self.state = AreaState.from_scopes(self.area.name, self.journal.stages.postures(self.incident.id))

    def _apply(self, spec: StageSpec, new_state: AreaState) -> StageOutcome:
        outcome = self.applier.apply(spec, {self.area.name: new_state})[self.area.name]
        self.state = new_state
        return outcome

    # -- where the recovery stands ------------------------------------------------------------------

    def _started(self) -> dict[str, Any] | None:
        for event in reversed(self.journal.timeline.of(self.incident.id)):
            if event["kind"] == EventKind.RECOVERY_STARTED and event["area"] == self.area.name:
                return dict(event["detail"])
        return None

    def _step_rows(self) -> list[Any]:
        return [s for s in self.journal.stages.of(self.incident.id, self.area.name) if s.phase == "recovery"]

    def planned_steps(self) -> list[Step]:
        started = self._started()
        names = list(started["steps"]) if started is not None else step_names(sorted(self.state.quarantined))
        steps = []
        for n in names:
            phase = recovery_step(n)
            sub_area = n.partition(":")[2] if phase.per_sub_area else ""  # one sub-area of its step
            steps.append(Step(n, phase.number, phase.title + (f": {sub_area}" if sub_area else "")))
        return steps

    def remaining(self) -> list[Step]:
        done = {s.name for s in self._step_rows() if s.state == "done"}
        return [s for s in self.planned_steps() if s.name not in done]

    # -- preconditions ------------------------------------------------------------------------------

    def preconditions(self) -> list[str]:
        """Every unmet precondition (empty when recovery may go on)."""
        unmet = self._approval_problems() + routing.node_problems(self.inv, list(self.area.hosts))
        resuming = self._started() is not None
        st = self.state
        if not resuming:
            finished = any(e["kind"] == EventKind.CONTAINMENT_FINISHED and e["area"] == self.area.name
                           and not e["detail"].get("dry_run") for e in self.journal.timeline.of(self.incident.id))
            if not (finished and st.posture == "isolated" and st.vectors_blocked and st.mobile_blocked):
                unmet.append(f"containment of '{self.area.name}' is not complete (posture {st.posture}, vectors "
                             f"{'blocked' if st.vectors_blocked else 'open'}, mobile "
                             f"{'blocked' if st.mobile_blocked else 'connected'})")
        states = self.journal.remediation.of(self.incident.id, self.area.name)
        excluded = self._excluded()
        unverified = [f"{h} ({states[h]['state'] if h in states else 'never remediated'})"
                      for h in self.area.hosts
                      if (states[h]["state"] if h in states else None) != "verified" and h not in excluded]
        if unverified:
            unmet.append(f"not remediated and verified: {', '.join(unverified)}")
        else:
            unmet += self._fresh_verification()
        since = datetime.now(UTC) - timedelta(seconds=self.req.quiet_window)
        recent = [d for d in self.source.detections(since) if d.area == self.area.name and d.infection]
        if recent:
            last = recent[-1]
            unmet.append(f"{len(recent)} detection(s) in '{self.area.name}' in the last "
                         f"{self.req.quiet_window:.0f}s (last: {last.host} at {last.time.isoformat()[:19]})")
        unmet += [f"the quiet window cannot pass: {p}" for p in self.source.problems(datetime.now(UTC))]
        return unmet

    def _approval_problems(self) -> list[str]:
        from orchestrator.recovery.approval import approval_problems

        return approval_problems(self.inv, self.journal, self.incident, self.area.name, self.req.operator)

    def _fresh_verification(self) -> list[str]:
        plan = self.journal.remediation.latest_plan(self.incident.id, self.area.name)
        if plan is None:
            return [f"no remediation plan stored for '{self.area.name}': nothing to verify the hosts against"]
        hosts = [h for h in self.area.hosts if h not in self._excluded()]
        extravars = {"irm_plan": plan, "irm_health": {h: health_targets(self.inv, self.inv.hosts[h]) for h in hosts},
                     **hosts_by_os(self.inv, hosts)}
        result = self.applier.run_playbook("remediate_verify", self.req.inventory, extravars=extravars,
                                           events=self.events)
        bad = [h for h in hosts if h not in result.hosts or result.hosts[h].status not in ("ok", "changed")]
        return [f"{h} does not verify on the host now: "
                + (" | ".join(result.hosts[h].failures) if h in result.hosts else "no result") for h in bad]

    # -- steps --------------------------------------------------------------------------------------

    def _target_state(self, step: Step) -> AreaState:
        """The area's state after ``step``, by the phase table's transition."""
        _, _, sub_area = step.name.partition(":")
        return recovery_step(step.name).transition(self.state, sub_area or None)

    def _excluded(self) -> set[str]:
        """Hosts an operator excluded (``irm exclude``): never verified, never reopened; they keep their
        host-level block, and the report names them."""
        return {h for h, r in self.journal.hosts.rows(self.incident.id).items() if r["excluded_reason"]}

    def _spec(self, step: Step) -> StageSpec | None:
        phase = recovery_step(step.name)
        if phase.per_sub_area and not step.name.partition(":")[2]:
            return None  # none quarantined: nothing to change
        hosts = [h for h in self.area.hosts if h not in self._excluded()]
        edge = self.inv.edge.name if self.inv.edge else ""
        where = {Where.EDGE: [edge], Where.GATEWAY: [self.area.gateway], Where.AREA_HOSTS: hosts}
        extravars = hosts_by_os(self.inv, hosts, "irm_media_targets") if phase.removable_storage else {}
        return StageSpec(step.name, phase.playbook, where[phase.where], step.title, extravars=extravars,
                         host_level=phase.host_level, number=step.number)

    def changes(self, step: Step, states: dict[str, AreaState] | None = None) -> list[str]:
        """What the step changes, per boundary or host: the rules it removes and adds (from ``states``,
        every area's state before the step; default: as the journal holds them)."""
        spec = self._spec(step)
        if spec is None:
            return ["nothing to change: no sub-area was quarantined"]
        now = states if states is not None else self.applier.states()
        before = self.applier.planned(now)
        after = self.applier.planned({**now, self.area.name: self._target_state(step)})
        lines = []
        for host in spec.targets:
            removed, added = _rule_diff(before[host], after[host])
            lines.append(f"{host}: {before[host].label} -> {after[host].label}")
            lines += [f"  - {r}" for r in removed] + [f"  + {r}" for r in added]
        if recovery_step(step.name).removable_storage:
            lines.append(f"area hosts ({len(self.area.hosts)}): removable storage allowed again")
        others = holders(self.inv, self.journal, self.area.name, self.incident.id)
        if others:
            lines.append(f"incident(s) {', '.join(map(str, others))} still hold {self.area.name}: what they hold "
                         "stays cut whatever this step does")
        return lines

    def _watched_areas(self, step: Step) -> set[str]:
        return set(self.inv.areas) if recovery_step(step.name).watches_every_area else {self.area.name}

    def _opened_probes(self, before: dict[str, Policy], after: dict[str, Policy]) -> list[Any]:
        return [p for p in self.paths.candidates(self.inv)
                if checks.allows(self.inv, after, p.source, p.target, p.port)
                and not checks.allows(self.inv, before, p.source, p.target, p.port)]

    def _soak(self, step: Step, applied_at: datetime, opened: list[Any], row: int,
              seen: list[dict[str, Any]]) -> dict[str, Any]:
        """Watch the detection sources for the soak window and probe what the step opened. What it sees
        goes on the step's row at once, so a kill loses none of it."""
        result: dict[str, Any] = {"seconds": self.req.soak, "probes": len(opened), "detections": list(seen)}
        if seen:
            return result
        if opened:
            closed = [r for r in self.paths.probe(self.inv, opened) if not r.open]
            result["probes_closed"] = [f"{r.probe.source}->{r.probe.target}:{r.probe.port} {r.outcome}"
                                       for r in closed]
            if closed:
                return result
        watched = self._watched_areas(step)
        deadline = time.monotonic() + self.req.soak
        self.events.say(f"{step.label}: soaking {self.req.soak:.0f}s, watching {', '.join(sorted(watched))}")
        while True:
            new = [d for d in self.source.detections(applied_at) if d.area in watched and d.infection]
            if new:
                result["detections"] = [_detection(d) for d in new]
                self.journal.stages.update(row, soak_detections=result["detections"])
                return result
            dead = self.source.problems(datetime.now(UTC))
            if dead:  # fail closed: silence from a dead feed proves nothing
                result["dead_sources"] = dead
                return result
            if time.monotonic() >= deadline:
                return result
            time.sleep(min(self.req.poll, max(0.0, deadline - time.monotonic())))

    def run(self) -> RecoveryReport:
        """The remaining steps, each confirmed, applied and soaked; the outcome, or the halt, is published
        as the decision the crisis cell now needs."""
        try:
            report = self._recover()
        except (RecoveryHalted, RunnerError) as exc:
            self._decision("recovery halted", [str(exc)],
                           "whether to re-contain, or to fix what it names and resume 'irm recover'")
            raise
        if not report.declined:
            self._decision("recovery step(s) done" if report.remaining else "area reconnected",
                           [f"done: {', '.join(report.done) or 'nothing'}"],
                           f"the next step ({report.remaining[0]})" if report.remaining
                           else "close the incident and hold the lessons-learned review ('irm report')")
        return report

    def _decision(self, event: str, done: list[str], decision: str) -> None:
        self.events.publish(DecisionNeeded(self.incident.id, event, (self.area.name,), tuple(done), decision,
                                           self.req.operator))

    def _recover(self) -> RecoveryReport:
        report = RecoveryReport(area=self.area.name, incident_id=self.incident.id)
        self._known_only()
        unmet = self.preconditions()
        if unmet:
            self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_REFUSED, self.req.operator, self.area.name,
                                      unmet=unmet)
            raise UserError(*unmet, "nothing was changed")
        steps = self.remaining()
        self._check_only(steps)
        self.applier.token = self.journal.locks.start_run(self.incident.id, "recover", self.area.name,
                                                          self.req.operator)
        try:
            self.journal.locks.acquire(self.area.name, self.incident.id, self.req.operator, self.applier.token)
        except UserError:
            self.journal.locks.end_run(self.applier.token)
            raise
        try:
            self._reread()
            if self._started() is None:
                self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_STARTED, self.req.operator,
                                          self.area.name,
                                          steps=[s.name for s in self.planned_steps()])
            self.journal.stages.interrupt_stale(self.incident.id, self.area.name, (self.phase,), self.req.operator)
            for row in self._step_rows():
                if row.state == "running":  # killed or interrupted: the posture before it back, then redone
                    self.events.say(f"resuming at {row.name}: it was interrupted (started {row.started_at[:19]})")
                    self._resumed[row.name] = self._resume(row)
                    report.resumed_at = row.name
                    self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_RESUMED, self.req.operator,
                                              self.area.name,
                                              step=row.name, interrupted_at=row.started_at,
                                              applied_at=row.detail.get("applied_at"))
            report.done = [s.name for s in self.planned_steps() if s not in steps]
            for step in steps:
                changes = self.changes(step)
                if not self.confirm(step, changes):
                    report.declined = step.name
                    self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_DECLINED, self.req.operator,
                                              self.area.name,
                                              step=step.name)
                    break
                self._step(step, changes)
                report.done.append(step.name)
                if self.req.next_only:
                    break
            report.remaining = [s.name for s in self.remaining()]
            if not report.remaining:
                self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_FINISHED, self.req.operator,
                                          self.area.name)
            return report
        finally:
            self.journal.locks.release(self.area.name)
            self.journal.locks.end_run(self.applier.token)

    def preview(self) -> RecoveryPreview:
        """The dry run: every precondition a real run checks (the unmet ones are listed, not raised), then
        each step left, in order, in check mode against the live boundaries and hosts, each from the
        state the steps before it would leave: the rules it would remove and add and the diff of every
        target's live table. Nothing is changed; the journal gets only the dry-run stage rows (marked so)
        and their own events, no lock."""
        self._known_only()
        preview = RecoveryPreview(area=self.area.name, incident_id=self.incident.id, unmet=self.preconditions())
        steps = self.remaining()
        self._check_only(steps)
        if self.req.next_only or self.req.only is not None:
            steps = steps[:1]
        self.applier.settings = replace(self.applier.settings, dry_run=True)
        self.applier.dry_states = self.applier.states()
        for step in steps:
            changes = self.changes(step, dict(self.applier.dry_states))
            spec = self._spec(step)
            outcome = self._apply(spec, self._target_state(step)) if spec is not None else None
            preview.steps.append(StepPreview(step, changes, outcome))
        return preview

    def _resume(self, row: Any) -> dict[str, Any]:
        """An interrupted step: put back the posture before it (from its row), so the step is redone from
        there; returns when its change first took effect and the detections its soak had seen."""
        before = row.detail.get("before")
        step = next((s for s in self.planned_steps() if s.name == row.name), None)
        spec = self._spec(step) if step is not None else None
        restored: list[str] = []
        if before is not None and spec is not None:
            previous = AreaState(posture=before["posture"], vectors_blocked=before["vectors_blocked"],
                                 mobile_blocked=before["mobile_blocked"], quarantined=set(before["quarantined"]))
            # Whatever the journal says, the step's targets may hold its change (confirmed just before the
            # kill): the posture before it is applied again, and each target compares its live table with
            # it and changes only what differs, so no boundary stays open while the journal says cut.
            back = _rollback(spec, f"{row.name}:restore", f"resume: the posture before {row.name} back")
            try:
                restored = self._apply(back, previous).changed
            except UserError as exc:
                self.journal.stages.end(row.id, "failed", reason=f"interrupted, and the posture before it could "
                                        f"not be restored: {exc}")
                raise
            if restored:
                self.events.say(f"{row.name}: found its change live on {', '.join(restored)}: the posture before it "
                                "is back, as the journal says")
        self.journal.stages.end(row.id, "interrupted", resumed_by=self.req.operator, restored=bool(restored),
                                found_live=restored)
        return {"applied_at": row.detail.get("applied_at"), "detections": row.detail.get("soak_detections", [])}

    def _known_only(self) -> None:
        """``--only`` names a step of the table (by name or number) or of this recovery's plan."""
        known = {*STEPS, *(str(i) for i in range(1, len(STEPS) + 1)), *(s.name for s in self.planned_steps())}
        if self.req.only is not None and self.req.only not in known:
            raise UserError(f"--only '{self.req.only}' is no recovery step ({STEP_CHOICES})")

    def _check_only(self, steps: list[Step]) -> None:
        if self.req.only is None:
            return
        if not steps:
            raise UserError(f"recovery of '{self.area.name}' is complete: there is no step left")
        wanted = self.req.only
        if wanted not in (steps[0].name, steps[0].name.split(":")[0], str(steps[0].number)):
            raise UserError(f"{wanted} cannot run now: the next step is {steps[0].label}, {steps[0].title}; "
                            "recovery goes in the IRM order and never skips a step", "nothing was changed")

    def _step(self, step: Step, changes: list[str]) -> None:
        spec = self._spec(step)
        row = self.journal.stages.start(self.incident.id, "recovery", self.area.name, step.name,
                                        ",".join(spec.targets if spec else []), False, self.req.operator,
                                        number=step.number, title=step.title, changes=changes,
                                        confirmed_by=self.req.operator,
                                        confirmation="--yes" if self.req.assume_yes else "y at the prompt",
                                        before={"posture": self.state.posture,
                                                "vectors_blocked": self.state.vectors_blocked,
                                                "mobile_blocked": self.state.mobile_blocked,
                                                "quarantined": sorted(self.state.quarantined)})
        previous = AreaState(posture=self.state.posture, vectors_blocked=self.state.vectors_blocked,
                             mobile_blocked=self.state.mobile_blocked, quarantined=set(self.state.quarantined))
        if spec is None:
            self.journal.stages.end(row, "done", soak=None, note="nothing to change")
            return
        before = self.applier.planned(self.applier.states())
        target = self._target_state(step)
        after = self.applier.planned_with({self.area.name: target})
        started = datetime.now(UTC)  # the soak is measured on this controller's clock, never a device's
        try:
            outcome = self._apply(spec, target)
        except ContainmentFailed as exc:
            # some hosts may have confirmed the step: never leave them open while the journal says blocked
            self.journal.stages.end(row, "failed", reason=f"{exc}; {self._roll_back_failed(step, spec, previous)}")
            raise
        except UserError as exc:
            self.journal.stages.end(row, "failed", reason=str(exc))
            raise
        skew = _clock_skew(outcome.first_applied_at, started, datetime.now(UTC))
        applied_at = started
        self.journal.stages.update(row, applied_at=applied_at.isoformat())
        # A step redone after a kill soaks from when its change first took effect, and keeps what was seen
        resumed = self._resumed.pop(step.name, None) or {}
        since = min(applied_at, datetime.fromisoformat(resumed["applied_at"])) if resumed.get("applied_at") \
            else applied_at
        if skew is not None:
            self._halt_back(step, spec, previous, row, {"seconds": 0, "clock_skew": skew},
                            f"the clock of {', '.join(spec.targets)} disagrees with this controller's by {skew:.0f}s "
                            f"(more than {MAX_CLOCK_SKEW:.0f}s): its times cannot be trusted for a soak")
        soak = self._soak(step, since - timedelta(seconds=1), self._opened_probes(before, after), row,
                          list(resumed.get("detections", [])))
        if soak["detections"]:
            hosts = sorted({d["host"] for d in soak["detections"]})
            self.events.say(f"{step.label}: new infection on {', '.join(hosts)}: putting the previous posture back")
            self._halt_back(step, spec, previous, row, soak,
                            f"new infection during the soak of {step.label}: {', '.join(hosts)}")
        if soak.get("dead_sources"):
            self.events.say(f"{step.label}: {'; '.join(soak['dead_sources'])}: putting the previous posture back")
            dead = "; ".join(soak["dead_sources"])
            self._halt_back(step, spec, previous, row, soak, f"the soak of {step.label} cannot vouch for no infection: "
                            f"{dead}")
        if soak.get("probes_closed"):
            reason = f"paths {step.label} opened do not answer: {'; '.join(soak['probes_closed'][:5])}"
            self.journal.stages.end(row, "halted", soak=soak, reason=reason, restored=False)
            self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_HALTED, self.req.operator, self.area.name,
                                      step=step.name, reason=reason, restored=False)
            raise RecoveryHalted(f"recovery halted at {step.label}: {reason}")
        self.journal.stages.end(row, "done", soak=soak, changed=outcome.changed)

    def _roll_back_failed(self, step: Step, spec: StageSpec, previous: AreaState) -> str:
        """A step that failed on some of its targets is rolled back on all of them (the ones that
        confirmed get the previous posture again; a host that still fails is journaled as what it
        enforces). Returns what happened, for the step's reason."""
        back = _rollback(spec, f"{step.name}:rollback", f"failed: previous posture back for {step.name}")
        try:
            outcomes = self.applier.apply(back, {self.area.name: previous}, tolerate_host_failures=True)
        except UserError as exc:
            return f"the rollback failed too: {exc}"
        self.state = previous
        failed = sorted(outcomes[self.area.name].failed) if self.area.name in outcomes else []
        return ("rolled back on every target" if not failed else
                f"rolled back, except on {', '.join(failed)} (see irm status)")

    def _halt_back(self, step: Step, spec: StageSpec, previous: AreaState, row: int, soak: dict[str, Any],
                   reason: str) -> NoReturn:
        """Fail closed: put the posture before the step back, journal why, and stop the recovery."""
        back = _rollback(spec, f"{step.name}:rollback", f"halt: previous posture back for {step.name}")
        try:
            self._apply(back, previous)
        except UserError as exc:
            self.journal.stages.end(row, "failed", soak=soak, reason=f"{reason}, and the previous posture could not "
                                    f"be put back: {exc}", restored=False)
            raise
        self.journal.stages.end(row, "halted", soak=soak, reason=reason, restored=True)
        self.journal.timeline.add(self.incident.id, EventKind.RECOVERY_HALTED, self.req.operator, self.area.name,
                                  step=step.name, reason=reason, detections=soak.get("detections", []), restored=True)
        raise RecoveryHalted(f"recovery halted at {step.label}: {reason}; the previous posture is back "
                             "and nothing further was reconnected")


def _rollback(spec: StageSpec, name: str, summary: str) -> StageSpec:
    """The stage that puts back the posture before ``spec``'s step, on the same targets with the same extra
    vars (step 3's removable-storage targets among them)."""
    return StageSpec(name, ROLLBACK[spec.playbook], spec.targets, summary, extravars=spec.extravars,
                     host_level=spec.host_level)


MAX_CLOCK_SKEW = 60.0  # seconds a device's clock may disagree with this controller's


def _clock_skew(reported: str | None, started: datetime, ended: datetime) -> float | None:
    """How far the time a device reports for its change lies outside the controller's own window for the
    stage (None when within ``MAX_CLOCK_SKEW``, or when the device reported none)."""
    if not reported:
        return None
    at = datetime.fromisoformat(reported)
    off = (started - at).total_seconds() if at < started else max(0.0, (at - ended).total_seconds())
    return off if off > MAX_CLOCK_SKEW else None


def _detection(d: Detection) -> dict[str, Any]:
    return {"time": d.time.isoformat(), "host": d.host, "area": d.area, "segment": d.segment,
            "signature": d.signature}


def _rule_diff(before: Policy, after: Policy) -> tuple[list[str], list[str]]:
    def rules(p: Policy) -> list[str]:
        return [f"{chain}: {r.action} {r.comment}" for chain in ("input", "forward", "output")
                for r in p.chain(chain).rules]

    old, new = rules(before), rules(after)
    return [r for r in old if r not in new], [r for r in new if r not in old]
