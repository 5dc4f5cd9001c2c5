"""The journal's typed rows: what each repository returns.

``Incident`` and ``Stage`` are records the phases work with. The other rows are ``TypedDict``s: they are
read by the views and written to JSON as they are (``irm status --json``, the report's data), and the
type checker holds every key a caller reads to the table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from orchestrator.core.incident import IncidentSpec


@dataclass(frozen=True)
class Incident:
    id: int
    spec: IncidentSpec
    status: str
    opened_at: str
    opened_by: str


@dataclass(frozen=True)
class Stage:
    id: int
    incident_id: int
    phase: str
    area: str
    name: str
    target: str
    state: str
    check_mode: bool
    operator: str
    started_at: str
    ended_at: str | None
    detail: dict[str, Any]


class EventRow(TypedDict):
    """One entry of the timeline; ``detail`` was validated against its kind's model when written."""
    id: int
    incident_id: int | None
    time: str
    kind: str
    area: str | None
    operator: str | None
    detail: dict[str, Any]


class HostResult(TypedDict):
    """What one host did in one stage's play."""
    stage_id: int
    host: str
    status: str
    ok: int
    changed: int
    failed: int
    unreachable: int
    failures: list[Any]


class RemediationRow(TypedDict):
    """A host's current remediation state (its history is the timeline's ``remediation_host`` events)."""
    incident_id: int
    area: str
    host: str
    state: str
    method: str | None
    detail: dict[str, Any]
    updated_at: str
    updated_by: str


class ApprovalRow(TypedDict):
    """A signed management approval: the statement as signed, its signature and the key's fingerprint
    (rows from before signed approvals have no statement)."""
    id: int
    incident_id: int
    area: str | None
    approved_by: str
    role: str
    reason: str
    approved_at: str
    recorded_by: str
    statement: str | None
    signature: str | None
    key_fingerprint: str | None


class NoteRow(TypedDict):
    """A crisis-cell note (decision, observation, communication)."""
    id: int
    incident_id: int
    text: str
    kind: str
    by: str
    at: str


class ActionRow(TypedDict):
    """An action item of the aftermath."""
    id: int
    incident_id: int
    text: str
    owner: str
    react: str | None
    due: str | None
    added_by: str
    added_at: str


class HostRow(TypedDict):
    """A host in an incident: whether it answers, what it last enforced (the newest any incident of the
    journal recorded), whether an operator excluded it."""
    incident_id: int
    host: str
    area: str | None
    reach: str
    reach_at: str | None
    reach_stage: str | None
    fingerprint: str | None
    fingerprint_at: str | None
    fingerprint_stage: str | None
    excluded_reason: str | None
    excluded_by: str | None
    excluded_at: str | None


class LockRow(TypedDict):
    """Who holds an area's lock (or the shared boundaries' lock)."""
    area: str
    incident_id: int | None
    pid: int
    hostname: str
    operator: str
    since: str
    token: str | None
    pid_start: str | None
    machine: str | None
