"""A fake playbook runner and management prober for unit tests of the phases (no root, no lab).

The fake plays what irm's modules report on a host: the planned table goes live and is confirmed
(``irm_live_fingerprint``, ``irm_confirmed``, ``irm_applied_at``), unless the test makes a playbook fail
on a host; then the host reports the table it kept (the last one it confirmed, or none)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.model import NotifySettings
from orchestrator.core.runner import ExecutionNode, HostResult, RunResult
from orchestrator.core.stream import EventStream, HostReported


@dataclass
class Call:
    playbook: str
    targets: list[str]
    extravars: dict[str, Any]
    check: bool
    node: str | None = None  # the execution node the play was sent to (None: the controller)


@dataclass
class FakeRunner:
    fail: dict[tuple[str, str], str] = field(default_factory=dict)  # (playbook, host) -> failure message
    facts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # extra facts per (playbook, host)
    fail_once: dict[tuple[str, str], str] = field(default_factory=dict)  # as ``fail``, the first time only
    playbook_facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # playbook -> facts on every host
    calls: list[Call] = field(default_factory=list)
    live: dict[str, str] = field(default_factory=dict)  # host -> fingerprint of its live table

    def __call__(self, playbook: str | Path, inventory: str | Path, *, extravars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, limit: str | None = None, tags: list[str] | None = None,
                 forks: int | None = None, events: EventStream | None = None,
                 node: ExecutionNode | None = None) -> RunResult:
        ev = dict(extravars or {})
        name = str(playbook)
        targets = [t for t in str(ev.get("irm_targets", "")).split(",") if t]
        for key in ("irm_targets_linux", "irm_targets_windows"):
            targets += [t for t in str(ev.get(key, "")).split(",") if t and t != "all:!all" and t not in targets]
        self.calls.append(Call(name, targets, ev, check, node.name if node else None))
        planned = ev.get("irm_fingerprints", {})
        hosts: dict[str, HostResult] = {}
        for host in targets:
            why = self.fail.get((name, host)) or self.fail_once.pop((name, host), None)
            if why is not None:
                hosts[host] = HostResult(host=host, ok=1, failed=1, failures=[f"task: {why}"],
                                         facts={"irm_live_fingerprint": self.live.get(host, "absent")})
            else:
                if not check and "irm_policies" in ev:
                    self.live[host] = planned.get(host, "absent")
                applies = not check and "irm_policies" in ev  # a read or reach play changes nothing
                hosts[host] = HostResult(host=host, ok=3, changed=1 if applies else 0, facts={
                    "irm_live_fingerprint": self.live.get(host, "absent"), "irm_confirmed": not check,
                    "irm_applied_at": datetime.now(UTC).isoformat(), **self.playbook_facts.get(name, {}),
                    **self.facts.get((name, host), {})})
            if events is not None:
                events.publish(HostReported(hosts[host], "runner_on_failed" if why else "runner_on_ok"))
        failed = any(h.failed for h in hosts.values())
        return RunResult(playbook=name, status="failed" if failed else "successful", rc=2 if failed else 0,
                         check=check, hosts=hosts)

    def playbooks(self) -> list[str]:
        return [c.playbook for c in self.calls]


@dataclass
class FakeProber:
    """Every endpoint answers, except those of the hosts in ``down``."""

    down: set[str] = field(default_factory=set)

    def __call__(self, endpoints: list[dict[str, Any]],
                 timeout: float = 3.0) -> tuple[list[dict[str, Any]], set[str]]:
        answered = [e for e in endpoints if str(e["host"]) not in self.down]
        return answered, {str(e["host"]) for e in endpoints} & self.down


class NoDetections:
    def detections(self, since: datetime) -> list[Any]:
        return []

    def problems(self, now: datetime) -> list[str]:
        return []


def without_channels(inv: Inventory) -> Inventory:
    """``inv`` with no crisis-cell channel: the fake-runner tests tell nobody (the lab's mailbox may be up
    for another run); tests/unit/test_stream.py proves what the phases tell the cell."""
    return inv.model_copy(update={"notify": NotifySettings()})
