"""The stage applier that containment and recovery share (by composition): for one change to the
posture of one or more areas (one play: several areas' first cuts at the edge are one change of the
edge's policy) it checks the whole planned policy set against the operator's management path, probes
who answers, journals the stage (one row per area, so status, the report, remediation and recovery stay
per area), runs the play commit-confirmed, records per-host results and what each host enforces, and,
when a boundary fails, waits for the dead-man timer and proves the management path is back. Postures
change in the journal only for what the hosts confirmed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core import checks, ios_readback, mgmt_probe, routing, runner
from orchestrator.core.contracts import StageVars
from orchestrator.core.errors import ContainmentFailed, RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.holds import held_by_others, strictest
from orchestrator.core.hooks import HOOKS
from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Host, Inventory, hosts_by_os
from orchestrator.core.journal import BOUNDARIES_LOCK, HostRow, Incident, Journal
from orchestrator.core.posture import AreaState, Policy, policies
from orchestrator.core.stream import EventStream, StageEnded, StageStarted


@dataclass
class StageSpec:
    name: str
    playbook: str
    targets: list[str]  # hosts whose firewall policy this stage applies, commit-confirmed
    summary: str
    extravars: dict[str, Any] = field(default_factory=dict)  # more for the playbook (recovery's mobile step)
    host_level: bool = False  # targets are area hosts: an unreachable one is skipped, not waited on
    number: int | None = None  # the stage's or step's number in its phase table
    area_targets: dict[str, list[str]] = field(default_factory=dict)  # each area's own targets (default: all)

    def targets_of(self, area: str) -> list[str]:
        return self.area_targets.get(area, self.targets) if self.area_targets else list(self.targets)

    @property
    def label(self) -> str:
        """What the live view shows: the table's number and the name."""
        return f"{self.number}. {self.name}" if self.number is not None else self.name


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


@dataclass(frozen=True)
class ApplierSettings:
    """How one run applies its stages, set once by its phase from the operator's request."""

    inventory: Path
    operator: str
    phase: str  # the journal's phase for the stage rows
    vectors: tuple[Vector, ...]
    dry_run: bool = False
    confirm_timeout: int = 60
    lock_wait: float = 600.0
    take_over: bool = False  # no compare-and-swap: replace whatever table is live (the operator said so)


@dataclass
class StageApplier:
    """Applies stages to areas of one incident, as ``settings`` says. ``token`` is the run's (its timers
    carry it); a dry run plans against ``dry_states``. The runner, prober and device read-back are the
    real ones unless a test hands in its fakes."""

    inv: Inventory
    journal: Journal
    incident: Incident
    settings: ApplierSettings
    events: EventStream = field(default_factory=EventStream)
    run_playbook: runner.PlaybookRunner = runner.run_playbook
    probe_management: runner.ManagementProber = mgmt_probe.probe
    token: str = "dry-run"
    dry_states: dict[str, AreaState] = field(default_factory=dict)
    verify_device: Callable[[Host, Policy], list[str]] = ios_readback.verify
    settle_device: Callable[[Host, float], bool] = ios_readback.wait_settled

    def __post_init__(self) -> None:
        # hosts behind an execution node have their part of every play run there (core.routing)
        self.run_playbook = routing.route(self.inv, self.run_playbook)

    # -- planning ----------------------------------------------------------------------------------

    def states(self) -> dict[str, AreaState]:
        """Every area's state, as the journal holds it."""
        scopes = self.journal.stages.postures(self.incident.id)
        return {a: AreaState.from_scopes(a, scopes) for a in self.inv.areas}

    def planned(self, states: dict[str, AreaState]) -> dict[str, Policy]:
        """The policies for this incident's ``states`` together with what every other open incident holds
        (the strictest wins, area by area; their vectors stay blocked): one table per host for all."""
        others, vectors = held_by_others(self.inv, self.journal, self.incident.id)
        merged = strictest(others, states) if others else states
        own = list(self.settings.vectors)
        return HOOKS.planned(policies(self.inv, [*own, *(v for v in vectors if v not in own)], merged))

    def planned_with(self, new_states: dict[str, AreaState]) -> dict[str, Policy]:
        """Every policy with these areas in their new states and the others as they are."""
        return self.planned({**self.states(), **new_states})

    def check_lockout(self, planned: dict[str, Policy]) -> None:
        problems = HOOKS.management_check(self.inv, planned)
        if problems:
            raise UserError(*problems, "nothing was applied")

    # -- applying ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _shared(self, spec: StageSpec) -> Iterator[None]:
        """Edge, core and gateway policies are built from every area's postures: a change to one is made
        under the journal-wide lock, held from reading the state to writing the postures."""
        if spec.host_level or self.settings.dry_run:
            yield
            return
        with self.journal.locks.hold(BOUNDARIES_LOCK, self.incident.id, self.settings.operator, self.token,
                                     wait=self.settings.lock_wait):
            yield

    def _probe(self, spec: StageSpec) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """The management endpoints that answer now, per play host (what its confirmation must reach
        again), and the hosts that do not answer at all."""
        answered, down = self.probe_management(checks.reach_targets(self.inv, spec.targets))
        reach: dict[str, list[dict[str, Any]]] = {}
        for endpoint in answered:
            reach.setdefault(str(endpoint["via"]), []).append(endpoint)
        return reach, down

    def apply(self, spec: StageSpec, new_states: dict[str, AreaState],
              tolerate_host_failures: bool = False) -> dict[str, StageOutcome]:
        """Apply one stage, as one play, that takes each area to its new state; returns each area's
        outcome (its own targets). Raises ContainmentFailed when a boundary (or, unless tolerated, a
        host) failed, UserError when the plan would cut management."""
        with self._shared(spec):
            return self._apply_locked(spec, new_states, tolerate_host_failures)

    def _reach_rows(self, hosts: list[str], reach: str, spec: StageSpec, default: str) -> None:
        by_area: dict[str, list[str]] = {}
        for h in hosts:
            known = self.inv.hosts.get(h)
            by_area.setdefault(known.area if known is not None and known.area else default, []).append(h)
        for area, group in by_area.items():
            self.journal.hosts.set_reach(self.incident.id, area, group, reach, spec.name)

    def _apply_locked(self, spec: StageSpec, new_states: dict[str, AreaState],
                      tolerate_host_failures: bool) -> dict[str, StageOutcome]:
        names = list(new_states)
        states = {**(self.states() if not self.settings.dry_run else self.dry_states), **new_states}
        planned = self.planned(states)
        self.check_lockout(planned)
        routing.require_nodes(self.inv, spec.targets)
        reach, down = self._probe(spec)
        targets = [t for t in spec.targets if t not in down] if spec.host_level else list(spec.targets)
        skipped = sorted(set(spec.targets) - set(targets))
        behind = sorted(down - set(spec.targets))
        if not self.settings.dry_run:
            self._reach_rows(skipped + behind, "unreachable", spec, names[0])
            self._reach_rows(sorted({str(e["host"]) for es in reach.values() for e in es}), "reached", spec, names[0])
        if skipped or behind:
            self.events.say(f"{spec.name}: not reached before the change: {', '.join(skipped + behind)} "
                            "(protected by the boundary only; retried at the end)")
        if not self.settings.dry_run:
            self.journal.locks.assert_holding()  # a lock taken from this run: no device is changed, no row started
        fingerprints = {h: planned[h].fingerprint for h in targets}
        if not self.settings.dry_run:  # before the stage row: what the compare-and-swap of IOS and Windows renders
            self.journal.hosts.remember_policies({fingerprints[h]: planned[h].model_dump(mode="json") for h in targets})
        self.events.publish(StageStarted(spec.label, tuple(targets), spec.summary))
        mine = {a: [t for t in spec.targets_of(a) if t in targets] for a in names}
        rows = {a: self.journal.stages.start(
            self.incident.id, self.settings.phase, a, spec.name, ",".join(mine[a]), self.settings.dry_run,
            self.settings.operator,
            summary=spec.summary, planned={h: fingerprints[h] for h in mine[a]}, token=self.token,
            unreachable=[h for h in skipped + behind
                         if len(names) == 1 or h in spec.targets_of(a) or self._in_area(h, a)])
            for a in names}
        empty = runner.RunResult(playbook=spec.playbook, status="successful", rc=0, check=self.settings.dry_run)
        result = empty
        unreachable_boundaries = [t for t in spec.targets if t in down and not spec.host_level]
        if unreachable_boundaries:
            detail = (f"{', '.join(unreachable_boundaries)} does not answer on its management path: nothing was "
                      "applied there")
            for row in rows.values():
                self.journal.stages.end(row, "failed", failed=unreachable_boundaries, reason=detail)
            self.events.publish(StageEnded(spec.label, False, tuple(spec.targets), detail))
            raise ContainmentFailed(f"stage {spec.name} failed: {detail}")
        if targets:
            result = self._run(spec, rows, mine, targets, planned, fingerprints, reach)
        missing = sorted(set(targets) - set(result.hosts))
        failed = sorted(set(result.failed_hosts) | set(missing))
        live = {h: str(r.facts.get("irm_live_fingerprint", "unknown")) for h, r in result.hosts.items()}
        host_rows = self.journal.hosts.rows(self.incident.id)
        # what each host enforces now: the planned table where it confirmed, else as far as irm can know
        enforced = {h: fp for h, fp in fingerprints.items() if h not in failed}
        enforced |= {h: _enforced(h, fingerprints[h], result.hosts.get(h), host_rows) for h in failed}
        if failed and not (spec.host_level and tolerate_host_failures):
            detail = self._after_failure(spec, names, failed, result, reach)
            for a, row in rows.items():  # the hosts that confirmed are journaled as what they now enforce
                self.journal.stages.end(row, "failed", failed=[h for h in failed if h in mine[a]] or failed,
                                        reason=detail, live={h: v for h, v in live.items() if h in mine[a]},
                                        fingerprints=None if self.settings.dry_run else {h: enforced[h] for h in mine[a]
                                                                               if h in enforced})
            self.events.publish(StageEnded(spec.label, False, tuple(spec.targets), detail))
            raise ContainmentFailed(f"stage {spec.name} failed on {', '.join(failed)}: {detail}")
        why = {h: " | ".join(result.hosts[h].failures) if h in result.hosts else "no result" for h in failed}
        outcomes: dict[str, StageOutcome] = {}
        for a, row in rows.items():
            own = runner.RunResult(playbook=result.playbook, status=result.status, rc=result.rc, check=result.check,
                                   hosts={h: r for h, r in result.hosts.items() if h in mine[a]}, via=result.via)
            applied = sorted(str(r.facts["irm_applied_at"]) for r in own.hosts.values() if "irm_applied_at" in r.facts)
            out = StageOutcome(spec.name, mine[a], own, first_applied_at=applied[0] if applied else None,
                               skipped=[h for h in skipped if h in spec.targets_of(a)],
                               failed={h: w for h, w in why.items() if h in mine[a]})
            self.journal.stages.end(
                row, "failed" if out.failed else "done",
                postures=new_states[a].scopes(self.inv.area(a)) if not self.settings.dry_run else None,
                fingerprints={h: enforced[h] for h in mine[a]} if not self.settings.dry_run else None,
                changed=out.changed, failed=sorted(out.failed),
                reason="; ".join(f"{h}: {w}" for h, w in out.failed.items()) or None,
                first_applied_at=out.first_applied_at, last_applied_at=applied[-1] if applied else None,
                via=result.via)
            outcomes[a] = out
        changed = sorted({h for o in outcomes.values() for h in o.changed})
        detail = f"{len(changed)} changed" + (f", failed on {', '.join(failed)}" if failed else "")
        self.events.publish(StageEnded(spec.label, not failed, tuple(targets), detail))
        if self.settings.dry_run:
            self.dry_states.update(new_states)
        return outcomes

    def _in_area(self, host: str, area: str) -> bool:
        known = self.inv.hosts.get(host)
        return known is not None and known.area == area

    def _run(self, spec: StageSpec, rows: dict[str, int], mine: dict[str, list[str]], targets: list[str],
             planned: dict[str, Policy], fingerprints: dict[str, str],
             reach: dict[str, list[dict[str, Any]]]) -> runner.RunResult:
        extravars = StageVars(
            irm_targets=",".join(targets),
            **hosts_by_os(self.inv, targets),
            irm_policies={h: planned[h].model_dump(mode="json") for h in targets},
            irm_fingerprints={h: fp for h, fp in fingerprints.items() if fp != "absent"},
            irm_token=self.token,
            irm_takeover_tokens=self.journal.locks.dead_tokens(),
            irm_expect=self._expected(targets),
            irm_expect_policies=self._expected_policies(targets),
            firewall_policy_confirm_timeout=self.settings.confirm_timeout,
            irm_reach=reach,
            **spec.extravars,
        ).model_dump(exclude_none=True)
        try:
            result = self.run_playbook(spec.playbook, self.settings.inventory, extravars=extravars,
                                       check=self.settings.dry_run, diff=self.settings.dry_run, events=self.events)
        except RunnerError as exc:
            for a, row in rows.items():
                self.journal.stages.end(row, "failed", failed=mine[a], reason=str(exc))
            self.events.publish(StageEnded(spec.label, False, tuple(targets), str(exc)))
            raise ContainmentFailed(f"stage {spec.name} failed: {exc}; the previous rules stay in place "
                                    "(any armed timer restores the last confirmed ruleset)") from None
        if not self.settings.dry_run:
            self._read_back(result, planned)
        self.journal.stages.keep_job_events(list(rows.values()), result.events)
        for a, row in rows.items():
            self.journal.stages.record_hosts(row, [
                {"host": h.host, "status": h.status, "ok": h.ok, "changed": h.changed, "failed": h.failed,
                 "unreachable": h.unreachable, "failures": h.failures} for h in result.hosts.values()
                if h.host in mine[a]])
        return result

    def _expected(self, targets: list[str]) -> dict[str, list[str]]:
        """Compare-and-swap: per host, the tables this journal knows there (no table at all, every table it
        recorded the host enforcing or planned for it); the host refuses to replace a table this journal
        never wrote. Not where the journal only knows the host is in an unknown state, nor when the
        operator takes over."""
        if self.settings.take_over:
            return {}
        newest, known = self.journal.hosts.enforced(), self.journal.hosts.known_tables()
        return {h: sorted({"absent", *known.get(h, set())} - {"unknown"}) for h in targets
                if newest.get(h) != "unknown"}

    def _expected_policies(self, targets: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Compare-and-swap where the device cannot fingerprint its own state (IOS access lists, Windows
        Firewall rules): per host, the policies whose rendering it may hold (no irm rules at all, or one
        this journal planned for it); the role compares what it reads with each and refuses the rest."""
        expected = self._expected([h for h in targets if self.inv.hosts[h].boundary_kind == "cisco_ios"
                                   or self.inv.hosts[h].os == "windows"])
        kept = self.journal.hosts.policies({fp for fps in expected.values() for fp in fps})
        empty = Policy(host="", label="no irm rules").model_dump(mode="json")
        return {h: [empty, *(kept[fp] for fp in fps if fp in kept)] for h, fps in expected.items()}

    def _read_back(self, result: runner.RunResult, planned: dict[str, Policy]) -> None:
        """Every IOS boundary the play changed without failing is read back with netmiko, a code path
        separate from the one that wrote; any difference from the plan fails it, naming what differs. A
        device the IOS direct path changed was read back in its session before the confirm (the same
        reading, ``ios_readback.read_session``) and is not read again."""
        for name, host in result.hosts.items():
            known = self.inv.hosts.get(name)
            if (known is None or known.boundary_kind != "cisco_ios" or host.failed or host.unreachable
                    or name in result.read_back):
                continue
            try:
                problems = self.verify_device(known, planned[name])
            except UserError as exc:
                problems = [str(exc)]
            if problems:
                host.failed += 1
                host.failures.append("read back with netmiko: " + "; ".join(problems))
                host.facts["irm_confirmed"] = False
                host.facts["irm_live_fingerprint"] = "unknown"
                self.events.say(f"{name}: the device does not hold what irm applied: {'; '.join(problems)}")

    def _after_failure(self, spec: StageSpec, areas: list[str], failed: list[str], result: runner.RunResult,
                       reach: dict[str, list[dict[str, Any]]]) -> str:
        reasons = "; ".join(f"{h}: {' | '.join(result.hosts[h].failures) if h in result.hosts else 'no result'}"
                            for h in failed)
        if self.settings.dry_run:
            return reasons
        # The dead-man timer restores the last confirmed ruleset on any host that did not confirm: wait
        # for it, then prove the management path is back with a fresh SSH connection to every host that
        # answered before the change. An IOS device's revert timer counts whole minutes: irm reads the
        # device until nothing is pending any more.
        until = time.monotonic() + self.settings.confirm_timeout + 2
        devices = [self.inv.hosts[h] for h in failed if h in self.inv.hosts
                   and self.inv.hosts[h].boundary_kind == "cisco_ios"]
        unsettled = []
        if devices:
            minutes = max(1, min(120, -(-self.settings.confirm_timeout // 60)))
            self.events.say(f"waiting up to {minutes} min for the revert timer of {', '.join(d.name for d in devices)}")
            unsettled = [d.name for d in devices if not self.settle_device(d, minutes * 60 + 30)]
            before = self.planned(self.states())  # the journal's postures: what was confirmed before this stage
            for d in devices:
                if d.name not in unsettled:
                    try:
                        problems = self.verify_device(d, before[d.name])
                    except UserError as exc:
                        problems = [str(exc)]
                    if problems:
                        unsettled.append(d.name)
                        reasons += f"; {d.name} does not hold its last confirmed policy: {'; '.join(problems)}"
        linux = [h for h in failed if h not in {d.name for d in devices}]
        if linux:
            self.events.say(f"waiting {self.settings.confirm_timeout}s for the dead-man timer on {', '.join(linux)}")
            time.sleep(max(0.0, until - time.monotonic()))
        expected = sorted(set(failed) | {str(e["host"]) for h in failed for e in reach.get(h, [])})
        try:
            back = self.run_playbook("reach", self.settings.inventory, extravars={"irm_targets": ",".join(expected)})
        except RunnerError as exc:
            return f"{reasons}; SSH could not be checked ({exc}): check {', '.join(expected)} by hand"
        answering = sorted(h for h, r in back.hosts.items() if r.status == "ok")
        for area in areas:
            self.journal.timeline.add(self.incident.id, EventKind.LOCKOUT_REVERTED, self.settings.operator, area,
                                      stage=spec.name, hosts=failed, reachable_again=answering, reasons=reasons)
        still = sorted(set(expected) - set(answering))
        if unsettled:
            return (f"{reasons}; {', '.join(unsettled)}: not back to the last confirmed policy (a change still "
                    "pending, a difference, or the device cannot be read): check it by hand (show access-lists, "
                    "show archive config rollback timer)")
        tail = (f"the dead-man timer restored the last confirmed ruleset; SSH answers again on {len(answering)} "
                f"host(s) ({', '.join(answering)})"
                if not still else f"SSH still fails on {', '.join(still)}: check these hosts by hand")
        return f"{reasons}; {tail}"


def _enforced(host: str, planned: str, result: runner.HostResult | None, rows: dict[str, HostRow]) -> str:
    """What a host a stage failed on enforces, as far as irm can know: confirmed, it keeps the planned
    table (a later task failed); applied but unconfirmed, its timer restores the last confirmed one
    (journaled before); otherwise what it reported live."""
    if result is None:
        return "unknown"
    if result.facts.get("irm_confirmed"):
        return planned
    live = str(result.facts.get("irm_live_fingerprint", "unknown"))
    if live == planned:
        return str((rows[host]["fingerprint"] if host in rows else None) or "absent")
    return live
