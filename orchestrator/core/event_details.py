"""The model of each journal event kind's detail (``events.EventKind``): what the journal validates before
it writes an event, and what the report and the tests read back. Unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.core.events import EventKind


class Detail(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectionItem(Detail):
    time: str
    host: str
    segment: str | None = None
    signature: str
    action: str
    source_address: str | None = None


class Detections(Detail):
    count: int
    hosts: list[str]
    items: list[DetectionItem]


class StageStarted(Detail):
    stage_id: int
    phase: str
    name: str
    target: str
    dry_run: bool


class StageEnded(Detail):
    stage_id: int
    phase: str
    name: str
    state: str
    dry_run: bool


class StageInterrupted(Detail):
    stage_id: int
    name: str


class HostsUnreachable(Detail):
    hosts: list[str]
    stage: str | None = None


class HostExcluded(Detail):
    host: str
    reason: str


class LockTakenOver(Detail):
    pid: int
    token: str | None = None
    since: str


class LockReleasedByOperator(Detail):
    lock: str
    pid: int
    hostname: str
    held_by: str
    reason: str


class ContainmentStarted(Detail):
    dry_run: bool
    started_at: str
    token: str
    take_over: bool = False  # --take-over: the live tables replaced with no compare-and-swap


class ContainmentFinished(Detail):
    dry_run: bool
    spread_stopped: bool | None
    quarantined: list[str]
    changed: list[str]
    first_cut_seconds: float | None
    total_seconds: float
    unreachable: list[str]
    host_failures: dict[str, str]


class Reason(Detail):
    reason: str


class Failure(Detail):
    reason: str
    dry_run: bool = False  # a check-mode run that failed: it changed nothing, and says so in the report


class LockoutReverted(Detail):
    stage: str
    hosts: list[str]
    reachable_again: list[str]
    reasons: str


class SubareaQuarantined(Detail):
    sub_areas: list[str]
    dry_run: bool


class BoundaryDrops(Detail):
    segment: str
    host: str
    packets: int  # dropped since the last reading
    total: int  # since the boundary's table was loaded


class SpreadStopped(Detail):
    quiet_window: float
    detections: int


class SpreadNotStopped(Detail):
    waited: float
    detections: int


class RemediationStarted(Detail):
    plan: str
    canaries: list[str]
    validated_by: str | None = None


class RemediationHost(Detail):
    """A host's new remediation state, with what led to it."""

    host: str
    state: str
    method: str | None = None
    needs: list[str] | None = None  # manual-needed: what no automated method delivered
    tried: list[str] | None = None
    delivered: list[str] | None = None
    verification: Any = None  # verified: what the host reported
    reasons: list[str] | None = None
    by: str | None = None  # manual: who remediated by hand


class RemediationMethodFailed(Detail):
    host: str
    method: str
    reason: str


class RemediationRetry(Detail):
    hosts: list[str]
    reason: str


class RemediationCanaryFailed(Detail):
    canaries: list[str]
    reasons: str


class RemediationCanariesVerified(Detail):
    canaries: list[str]


class RemediationManualDone(Detail):
    host: str
    by: str
    note: str
    previous_state: str


class RemediationFinished(Detail):
    verified: list[str]
    manual_needed: list[str]
    failed: list[str]


class Approval(Detail):
    approved_by: str
    role: str
    reason: str
    key_fingerprint: str
    signed: bool


class RecoveryStarted(Detail):
    steps: list[str]


class RecoveryRefused(Detail):
    unmet: list[str]


class RecoveryStep(Detail):
    step: str


class RecoveryResumed(Detail):
    step: str
    interrupted_at: str
    applied_at: str | None = None


class RecoveryHalted(Detail):
    step: str
    reason: str
    restored: bool
    detections: list[dict[str, Any]] = []


class Nothing(Detail):
    pass


class IncidentClosed(Detail):
    forced: bool
    reason: str | None = None
    still_held: dict[str, str] = {}  # area -> what the incident still held when a forced close ended it


class Notified(Detail):
    channel: str  # email or webhook
    subject: str
    recipients: list[str]


class NotifyFailed(Detail):
    channel: str
    subject: str
    error: str
    recipients: list[str] = []


class WatchStarted(Detail):
    policy: str  # the policy's name
    path: str
    sha256: str  # the digest of the signed bytes
    signers: list[str]
    areas: list[str]
    through: str
    dry_run: bool


class WatchTriggered(Detail):
    policy: str
    sha256: str
    signers: list[str]
    areas: list[str]
    reasons: dict[str, str]  # area -> the detections that crossed the trigger
    through: str
    dry_run: bool
    opened_incident: bool


class WatchQuarantined(Detail):
    policy: str
    sha256: str
    signers: list[str]
    sub_areas: dict[str, list[str]]  # area -> the sub-areas quarantined
    reasons: dict[str, str]  # sub-area -> the detections that crossed the trigger
    dry_run: bool


class WatchRefused(Detail):
    policy: str
    areas: list[str]
    reason: str


class WatchPaused(Detail):
    reason: str


class WatchSource(Detail):
    problem: str
    cleared: bool


DETAILS: dict[EventKind, type[BaseModel]] = {
    EventKind.WATCH_STARTED: WatchStarted,
    EventKind.WATCH_TRIGGERED: WatchTriggered,
    EventKind.WATCH_REFUSED: WatchRefused,
    EventKind.WATCH_PAUSED: WatchPaused,
    EventKind.WATCH_RESUMED: WatchPaused,
    EventKind.WATCH_SOURCE: WatchSource,
    EventKind.WATCH_QUARANTINED: WatchQuarantined,
    EventKind.INCIDENT_CLOSED: IncidentClosed,
    EventKind.NOTIFIED: Notified,
    EventKind.NOTIFY_FAILED: NotifyFailed,
    EventKind.DETECTIONS: Detections,
    EventKind.STAGE_STARTED: StageStarted,
    EventKind.STAGE_ENDED: StageEnded,
    EventKind.STAGE_INTERRUPTED: StageInterrupted,
    EventKind.HOSTS_UNREACHABLE: HostsUnreachable,
    EventKind.HOST_EXCLUDED: HostExcluded,
    EventKind.LOCK_TAKEN_OVER: LockTakenOver,
    EventKind.LOCK_RELEASED_BY_OPERATOR: LockReleasedByOperator,
    EventKind.CONTAINMENT_STARTED: ContainmentStarted,
    EventKind.CONTAINMENT_FINISHED: ContainmentFinished,
    EventKind.CONTAINMENT_FAILED: Failure,
    EventKind.CONTAINMENT_REFUSED: Reason,
    EventKind.LOCKOUT_REVERTED: LockoutReverted,
    EventKind.SUBAREA_QUARANTINED: SubareaQuarantined,
    EventKind.SPREAD_STOPPED: SpreadStopped,
    EventKind.BOUNDARY_DROPS: BoundaryDrops,
    EventKind.SPREAD_NOT_STOPPED: SpreadNotStopped,
    EventKind.REMEDIATION_STARTED: RemediationStarted,
    EventKind.REMEDIATION_HOST: RemediationHost,
    EventKind.REMEDIATION_METHOD_FAILED: RemediationMethodFailed,
    EventKind.REMEDIATION_RETRY: RemediationRetry,
    EventKind.REMEDIATION_CANARY_FAILED: RemediationCanaryFailed,
    EventKind.REMEDIATION_CANARIES_VERIFIED: RemediationCanariesVerified,
    EventKind.REMEDIATION_MANUAL_DONE: RemediationManualDone,
    EventKind.REMEDIATION_FINISHED: RemediationFinished,
    EventKind.APPROVAL: Approval,
    EventKind.RECOVERY_STARTED: RecoveryStarted,
    EventKind.RECOVERY_REFUSED: RecoveryRefused,
    EventKind.RECOVERY_DECLINED: RecoveryStep,
    EventKind.RECOVERY_RESUMED: RecoveryResumed,
    EventKind.RECOVERY_HALTED: RecoveryHalted,
    EventKind.RECOVERY_FINISHED: Nothing,
}
