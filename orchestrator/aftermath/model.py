"""The crisis report's data, typed: what ``Report.data`` builds from the journal and the inventory,
what ``report.json`` holds, and what the Markdown and HTML templates render. Unknown fields are
refused, so a renderer and the builder cannot drift apart silently."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.core.event_details import DetectionItem


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentPart(Part):
    id: int
    worm: str
    vectors: list[str]
    signatures: list[str]
    references: list[str]
    status: str
    opened_at: str
    opened_by: str


class Perimeter(Part):
    areas: list[str]
    sub_areas: list[str]
    infected_hosts: list[str]


MILESTONES = ("first_cut", "spread_stopped", "remediated", "recovered")


class AreaSummary(Part):
    contained_at: str | None
    milestones: dict[str, str | None]  # MILESTONES -> when
    since_opened_s: dict[str, float | None]  # MILESTONES -> seconds after the incident was opened
    phases: dict[str, list[str | None]]  # containment | remediation | recovery -> [start, end]
    halts: list[str]
    downtime_cost_per_hour: float | None


class TimelineEntry(Part):
    id: int
    time: str
    kind: str
    area: str | None
    operator: str
    text: str
    react: str | None
    react_name: str | None


class Facts(Part):
    right: list[str]
    wrong: list[str]
    manual_hosts: list[str]


class Note(Part):
    id: int
    incident_id: int
    text: str
    kind: str
    by: str
    at: str


class Approval(Part):
    area: str | None  # journals before migration 6 did not record it
    approved_by: str
    role: str
    reason: str
    approved_at: str
    recorded_by: str | None
    key_fingerprint: str | None
    statement: str | None
    signature: str | None


class CostLine(Part):
    item: str
    formula: str
    inputs: dict[str, Any]
    amount: float
    ongoing: bool = False  # a downtime still running when the report was made


class Cost(Part):
    currency: str
    lines: list[CostLine]
    total: float
    not_declared: list[str]


class Action(Part):
    text: str
    owner: str | None
    react: str | None
    due: str | None
    source: str  # crisis cell | suggested
    added_by: str | None = None
    added_at: str | None = None


class ReportData(Part):
    incident: IncidentPart
    generated_at: str
    first_detection: DetectionItem | None
    patient_zero: str | None
    perimeter: Perimeter
    areas: dict[str, AreaSummary]
    timeline: list[TimelineEntry]
    facts: Facts
    notes: list[Note]
    approvals: list[Approval]
    cost: Cost
    actions: list[Action]
    architecture_md: str = ""  # core.archmap: the inventory's architecture, escaped for Markdown
    architecture_svg: str = ""  # and drawn, every name XML-escaped
