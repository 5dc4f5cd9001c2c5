"""Remediation of one contained area with a validated plan: canaries first, then the rest, every
method falling through to the next where the worm blocks it, nothing counted remediated unless the
host itself verifies clean.

Per host the journal keeps one state (pending, canary, fixed, disinfected, verified, manual-needed,
failed) and every change as an event. A method runs as one playbook over every host that still needs
what it delivers (``remediation_plan.METHODS``); a host whose methods cannot deliver everything is
listed as manual-needed. ``mark_manual`` records a technician's work and verifies the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from orchestrator.core import checks, mgmt_probe, routing, runner
from orchestrator.core.errors import CanaryFailed, RemediationIncomplete, RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.inventory import Host, Inventory, hosts_by_os
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.posture import AreaState, resolve_endpoint
from orchestrator.core.stream import DecisionNeeded, EventStream, HostStateChanged, StageStarted
from orchestrator.crisis import notify
from orchestrator.remediation.plan import METHODS, RemediationPlan, plan_from_file, require_validated

STATES = ("pending", "canary", "fixed", "disinfected", "verified", "manual-needed", "failed")


@dataclass
class RemediateRequest:
    inventory: Path
    area: str
    operator: str
    plan_path: Path | None = None
    incident_id: int | None = None
    canaries: list[str] | None = None


@dataclass
class RemediationReport:
    area: str
    incident_id: int
    canaries: list[str]
    states: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def hosts_in(self, *states: str) -> list[str]:
        return sorted(h for h, s in self.states.items() if s in states)


@dataclass
class PreviewStep:
    """One method (or the verification) of a dry run: the hosts it would run on and what check mode saw."""

    name: str
    hosts: list[str]
    result: runner.RunResult


@dataclass
class RemediationPreview:
    """A dry run: what ``run`` would check and do, with nothing changed and nothing journaled."""

    area: str
    incident_id: int
    canaries: list[str]
    unreachable: list[str]
    steps: list[PreviewStep] = field(default_factory=list)

    def would_change(self) -> dict[str, list[str]]:
        """Per host, every change check mode reported (the method, then the task)."""
        out: dict[str, list[str]] = {}
        for step in self.steps:
            for host, hr in sorted(step.result.hosts.items()):
                out.setdefault(host, []).extend(f"{step.name}: {w}" for w in hr.would)
        return {h: w for h, w in out.items() if w}

    def verification(self) -> dict[str, list[str]]:
        """Per host, why it would not verify as it stands now (an empty list: it verifies already)."""
        step = next((s for s in self.steps if s.name == "verify"), None)
        if step is None:
            return {}
        out = {}
        for h in step.hosts:
            hr = step.result.hosts.get(h)
            clean = hr is not None and hr.status in ("ok", "changed") and isinstance(hr.facts.get("irm_verification"),
                                                                                   dict)
            out[h] = [] if clean else _verification_reasons(hr)
        return out


def health_targets(inv: Inventory, host: Host) -> list[dict[str, Any]]:
    """What must still answer from ``host`` after remediation: its declared health checks, and every
    critical flow it is a source of, to each destination that is an inventory host."""
    out = []
    for check in host.health_checks:
        target = inv.hosts[check.host] if check.host else host
        out.append({"name": check.name, "address": str(target.address), "port": check.port})
    for area in inv.areas.values():
        for flow in area.critical_flows:
            if flow.protocol != "tcp" or not _in_any(host, flow.sources, inv):
                continue
            for dest in flow.destinations:
                if dest in inv.hosts and dest != host.name:
                    out.extend({"name": flow.name, "address": str(inv.hosts[dest].address), "port": port}
                               for port in flow.ports)
    return out


def _in_any(host: Host, endpoints: list[str], inv: Inventory) -> bool:
    nets: list[IPv4Network] = [n for e in endpoints for n in resolve_endpoint(inv, e)]
    return any(host.address in n for n in nets)


class Remediation:
    def __init__(self, req: RemediateRequest, inv: Inventory, journal: Journal,
                 events: EventStream | None = None, *, run: runner.PlaybookRunner = runner.run_playbook,
                 probe: runner.ManagementProber = mgmt_probe.probe) -> None:
        self.req = req
        self.run_playbook = routing.route(inv, run)
        self.probe_management = probe
        self.inv = inv
        self.journal = journal
        self.events = events or EventStream()  # what this run tells its listeners (core.stream)
        notify.listen(self.events, inv, journal)
        self.area = inv.area(req.area)
        self.incident: Incident = journal.incidents.open_for(req.incident_id)
        self.hosts = [inv.hosts[h] for h in self.area.hosts]
        self.plan = self._plan()
        self.report: RemediationReport | None = None  # the last run's, also when it raised

    # -- checks before anything runs -------------------------------------------------------------

    def _plan(self) -> RemediationPlan:
        if self.req.plan_path is not None:
            return plan_from_file(self.req.plan_path)
        stored = self.journal.remediation.latest_plan(self.incident.id, self.area.name)
        if stored is None:
            raise UserError(f"no remediation plan stored for area '{self.area.name}' in incident "
                            f"{self.incident.id}: run irm remediate --area {self.area.name} --plan FILE first")
        return RemediationPlan.model_validate(stored)

    def preflight(self) -> list[str]:
        """Every problem that refuses the run, before anything is applied; returns the canaries."""
        problems: list[str] = []
        where = str(self.req.plan_path) if self.req.plan_path else f"stored plan '{self.plan.name}'"
        try:
            require_validated(self.plan, where)
        except UserError as exc:
            problems.append(str(exc))
        state = AreaState.from_scopes(self.area.name, self.journal.stages.postures(self.incident.id))
        problems += routing.node_problems(self.inv, list(self.area.hosts))
        if not (state.posture == "isolated" and state.vectors_blocked and state.mobile_blocked):
            problems.append(f"area '{self.area.name}' is not contained (posture {state.posture}, vectors "
                            f"{'blocked' if state.vectors_blocked else 'open'}, mobile "
                            f"{'blocked' if state.mobile_blocked else 'connected'}): run irm contain --area "
                            f"{self.area.name} first")
        for os_name in sorted({h.os for h in self.hosts}):
            if not self.plan.methods_for(os_name):
                hosts = ", ".join(h.name for h in self.hosts if h.os == os_name)
                problems.append(f"{where}: no methods for host type '{os_name}' (hosts {hosts})")
        canaries = self._canaries(problems)
        if problems:
            raise UserError(*problems, "nothing was applied")
        return canaries

    def _canaries(self, problems: list[str]) -> list[str]:
        if self.req.canaries is None:  # one per host type, the first by name
            return sorted({os_name: min(h.name for h in self.hosts if h.os == os_name)
                           for os_name in {h.os for h in self.hosts}}.values())
        unknown = [c for c in self.req.canaries if c not in self.area.hosts]
        if unknown:
            problems.append(f"--canary: {', '.join(unknown)} not in area '{self.area.name}' "
                            f"(hosts: {', '.join(self.area.hosts)})")
        if not self.req.canaries:
            problems.append("--canary: name at least one host")
        return sorted(set(self.req.canaries))

    # -- running -----------------------------------------------------------------------------------

    def _set(self, report: RemediationReport, host: str, state: str, method: str | None = None,
             **detail: Any) -> None:
        report.states[host] = state
        self.journal.remediation.set(self.incident.id, self.area.name, host, state, self.req.operator,
                                     method=method, **detail)
        self.events.publish(HostStateChanged(host, state, "; ".join(str(v) for v in detail.values() if v)))

    def _extravars(self, hosts: list[str], **more: Any) -> dict[str, Any]:
        return {
            "irm_plan": self.plan.model_dump(mode="json"),
            **hosts_by_os(self.inv, hosts),
            **more,
        }

    def _run(self, name: str, playbook: str, hosts: list[str], **more: Any) -> runner.RunResult:
        self.events.publish(StageStarted(name, tuple(hosts)))
        stage_id = self.journal.stages.start(self.incident.id, "remediation", self.area.name, name, ",".join(hosts),
                                             False, self.req.operator)
        result = self.run_playbook(playbook, self.req.inventory, extravars=self._extravars(hosts, **more),
                                     events=self.events)
        self.journal.stages.record_hosts(stage_id, [
            {"host": h.host, "status": h.status, "ok": h.ok, "changed": h.changed, "failed": h.failed,
             "unreachable": h.unreachable, "failures": h.failures} for h in result.hosts.values()])
        failed = sorted(set(hosts) - {h for h, r in result.hosts.items() if r.status in ("ok", "changed")})
        self.journal.stages.end(stage_id, "done" if not failed else "failed", failed=failed)
        return result

    def deploy(self, hosts: list[str], report: RemediationReport) -> list[str]:
        """Each method in the plan's order on every host still needing what it delivers; returns the
        hosts whose needs are all met (to verify). The others are manual-needed."""
        needs = {h: set(self.plan.needs(self.inv.hosts[h].os)) for h in hosts}
        tried: dict[str, list[str]] = {h: [] for h in hosts}
        self._methods(hosts, needs, tried, report)
        # A worm that blocked a method (held the package lock, stopped the update service) may be gone
        # once its host is disinfected: the methods that failed there get one more try.
        retry = [h for h in hosts if needs[h] and "disinfect" not in needs[h] and tried[h]]
        if retry:
            self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_RETRY, self.req.operator, self.area.name,
                                      hosts=retry, reason="disinfected since a method failed there")
            self._methods(retry, needs, tried, report)
        ready = []
        for h in hosts:
            if needs[h]:
                reasons = [f"no working method for {', '.join(sorted(needs[h]))}", *tried[h]]
                report.reasons[h] = reasons
                self._set(report, h, "manual-needed", needs=sorted(needs[h]), tried=tried[h])
            else:
                ready.append(h)
        return ready

    def _methods(self, hosts: list[str], needs: dict[str, set[str]], tried: dict[str, list[str]],
                 report: RemediationReport) -> None:
        for os_name in sorted({self.inv.hosts[h].os for h in hosts}):
            for method in self.plan.methods_for(os_name):
                if method == "manual":
                    continue
                delivers = METHODS[os_name][method]
                targets = [h for h in hosts if self.inv.hosts[h].os == os_name and needs[h] & delivers]
                if not targets:
                    continue
                result = self._run(f"method:{method}", f"remediate_{method}", targets)
                for h in targets:
                    hr = result.hosts.get(h)
                    if hr is not None and hr.status in ("ok", "changed"):
                        needs[h] -= delivers
                        state = "disinfected" if "disinfect" in delivers else "fixed"
                        self._set(report, h, state, method=method, delivered=sorted(delivers))
                    else:
                        why = "; ".join(hr.failures) if hr is not None and hr.failures else "no result"
                        tried[h].append(f"{method}: {why}")
                        self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_METHOD_FAILED,
                                                  self.req.operator,
                                                  self.area.name, host=h, method=method, reason=why)

    def verify(self, hosts: list[str], report: RemediationReport, method: str | None = None) -> list[str]:
        """Verify on the hosts; returns the verified ones. Unverified hosts are failed, with the reasons."""
        if not hosts:
            return []
        health = {h: health_targets(self.inv, self.inv.hosts[h]) for h in hosts}
        result = self._run("verify", "remediate_verify", hosts, irm_health=health)
        verified = []
        for h in hosts:
            hr = result.hosts.get(h)
            found = hr.facts.get("irm_verification") if hr is not None else None
            if hr is not None and hr.status in ("ok", "changed") and isinstance(found, dict):
                verified.append(h)
                self._set(report, h, "verified", method=method, verification=found)
            else:
                reasons = _verification_reasons(hr)
                report.reasons[h] = reasons
                self._set(report, h, "failed", method=method, reasons=reasons)
        return verified

    def _unreachable(self, report: RemediationReport) -> set[str]:
        """Hosts that do not answer on their management path are not waited on: journaled unreachable,
        named, and left for a re-run (or an operator's 'irm exclude')."""
        endpoints = [e for e in checks.reach_targets(self.inv, [h.name for h in self.hosts]) if e["via"] == e["host"]]
        _, down = self.probe_management(endpoints)
        self.journal.hosts.set_reach(self.incident.id, self.area.name, sorted(down), "unreachable", "remediation")
        for h in sorted(down):
            report.reasons[h] = ["does not answer on its management path: re-run irm remediate once it does, or "
                                 "irm exclude HOST --reason TEXT"]
            self._set(report, h, "unreachable", reasons=report.reasons[h])
        return down

    def run(self) -> RemediationReport:
        """Canaries first, then the rest; the outcome, or the stop, is published as the decision the
        crisis cell now needs."""
        area = self.area.name
        try:
            report = self._remediate()
        except (CanaryFailed, RemediationIncomplete, RunnerError) as exc:
            self._decision("remediation stopped", [str(exc)],
                           "manual remediation of the hosts it names, or a corrected plan")
            raise
        self._decision("remediation done", [f"{len(report.hosts_in('verified'))} host(s) remediated and verified "
                                            f"with plan '{self.plan.name}'"],
                       f"management approval to reconnect {area} ('irm approve --area {area}', then 'irm recover')")
        return report

    def _decision(self, event: str, done: list[str], decision: str) -> None:
        self.events.publish(DecisionNeeded(self.incident.id, event, (self.area.name,), tuple(done), decision,
                                           self.req.operator))

    def _remediate(self) -> RemediationReport:
        canaries = self.preflight()
        report = self.report = RemediationReport(area=self.area.name, incident_id=self.incident.id,
                                                 canaries=canaries)
        self.journal.locks.acquire(self.area.name, self.incident.id, self.req.operator)
        try:
            self.journal.stages.interrupt_stale(self.incident.id, self.area.name, ("remediation",), self.req.operator)
            if self.req.plan_path is not None:
                self.journal.remediation.store_plan(self.incident.id, self.area.name, self.plan.name,
                                                    self.plan.model_dump(mode="json"), str(self.req.plan_path),
                                                    self.req.operator)
            self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_STARTED, self.req.operator,
                                      self.area.name,
                                      plan=self.plan.name, canaries=canaries, validated_by=self.plan.validated_by)
            down = self._unreachable(report)
            if down & set(canaries) and self.req.canaries is not None:
                raise UserError(f"canary {', '.join(sorted(down & set(canaries)))} does not answer on its management "
                                "path: choose another with --canary", "nothing was applied")
            if down & set(canaries):  # default canaries: the first host of each type that answers
                reachable = [h for h in self.hosts if h.name not in down]
                canaries = report.canaries = sorted(min(h.name for h in reachable if h.os == os_name)
                                                    for os_name in {h.os for h in reachable})
            rest = [h.name for h in self.hosts if h.name not in canaries and h.name not in down]
            for h in rest:
                self._set(report, h, "pending")
            for h in canaries:
                self._set(report, h, "canary")
            ready = self.deploy(canaries, report)
            verified = self.verify(ready, report)
            bad = [c for c in canaries if c not in verified]
            if bad:
                reasons = "; ".join(f"{c}: {' | '.join(report.reasons.get(c, ['not verified']))}" for c in bad)
                self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_CANARY_FAILED, self.req.operator,
                                          self.area.name, canaries=bad, reasons=reasons)
                raise CanaryFailed(f"canary {', '.join(bad)} failed, the other {len(rest)} host(s) were not touched: "
                                   f"{reasons}")
            self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_CANARIES_VERIFIED, self.req.operator,
                                      self.area.name, canaries=canaries)
            ready = self.deploy(rest, report)
            self.verify(ready, report)
            left = report.hosts_in("manual-needed", "failed", "unreachable")
            self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_FINISHED, self.req.operator,
                                      self.area.name, verified=report.hosts_in("verified"),
                                      manual_needed=report.hosts_in("manual-needed"),
                                      failed=report.hosts_in("failed"))
            if left:
                raise RemediationIncomplete(
                    f"{len(report.hosts_in('verified'))} host(s) verified; needing manual work: "
                    + "; ".join(f"{h} ({report.states[h]}: {' | '.join(report.reasons.get(h, []))})" for h in left)
                    + f". After the work, irm mark-manual HOST --technician NAME --area {self.area.name}")
            return report
        finally:
            self.journal.locks.release(self.area.name)

    def preview(self) -> RemediationPreview:
        """The dry run: every check ``run`` makes before it applies anything (``UserError`` naming each
        problem), then every method of the plan in check mode on every host it could run on (canaries
        and the rest alike), then the verification as the hosts stand now. Nothing is changed on a host,
        nothing is written to the journal, no lock is taken."""
        canaries = self.preflight()
        endpoints = [e for e in checks.reach_targets(self.inv, [h.name for h in self.hosts]) if e["via"] == e["host"]]
        _, down = self.probe_management(endpoints)
        preview = RemediationPreview(area=self.area.name, incident_id=self.incident.id, canaries=canaries,
                                     unreachable=sorted(down))
        hosts = [h.name for h in self.hosts if h.name not in down]
        for os_name in sorted({self.inv.hosts[h].os for h in hosts}):
            needs = set(self.plan.needs(os_name))
            for method in self.plan.methods_for(os_name):
                targets = [h for h in hosts if self.inv.hosts[h].os == os_name]
                if method == "manual" or not needs & METHODS[os_name][method] or not targets:
                    continue
                self.events.publish(StageStarted(f"method:{method} (check mode)", tuple(targets)))
                result = self.run_playbook(f"remediate_{method}", self.req.inventory,
                                           extravars=self._extravars(targets), check=True, events=self.events)
                preview.steps.append(PreviewStep(f"method:{method}", targets, result))
        if hosts:
            health = {h: health_targets(self.inv, self.inv.hosts[h]) for h in hosts}
            self.events.publish(StageStarted("verify (check mode)", tuple(hosts)))
            result = self.run_playbook("remediate_verify", self.req.inventory,
                                       extravars=self._extravars(hosts, irm_health=health), check=True,
                                       events=self.events)
            preview.steps.append(PreviewStep("verify", hosts, result))
        return preview

    def mark_manual(self, host: str, by: str, note: str) -> RemediationReport:
        """Record a technician's manual remediation of ``host``, then verify it on the host."""
        if host not in self.area.hosts:
            raise UserError(f"host '{host}' is not in area '{self.area.name}' (hosts: {', '.join(self.area.hosts)})")
        current = self.journal.remediation.of(self.incident.id, self.area.name).get(host)
        if current is None:
            raise UserError(f"host '{host}' has no remediation state: run irm remediate --area {self.area.name} first")
        if current["state"] == "verified":
            raise UserError(f"host '{host}' is already verified ({current['updated_at'][:19]})")
        report = self.report = RemediationReport(area=self.area.name, incident_id=self.incident.id, canaries=[])
        self.journal.locks.acquire(self.area.name, self.incident.id, self.req.operator)
        try:
            self.journal.timeline.add(self.incident.id, EventKind.REMEDIATION_MANUAL_DONE, self.req.operator,
                                      self.area.name,
                                      host=host, by=by, note=note, previous_state=current["state"])
            if not self.verify([host], report, method="manual"):
                self._set(report, host, "manual-needed", method="manual", by=by,
                          reasons=report.reasons.get(host, []))
                raise RemediationIncomplete(f"{host}: recorded as done by {by}, but verification on the host "
                                            f"failed: {' | '.join(report.reasons.get(host, []))}")
            return report
        finally:
            self.journal.locks.release(self.area.name)


def _verification_reasons(hr: runner.HostResult | None) -> list[str]:
    if hr is None:
        return ["no verification result"]
    found = hr.facts.get("irm_verification")
    if isinstance(found, dict):
        reasons = [str(r) for key in ("infected", "unfixed", "unhealthy") for r in found.get(key, [])]
        if reasons:
            return reasons
    return hr.failures or [f"verification {hr.status}"]
