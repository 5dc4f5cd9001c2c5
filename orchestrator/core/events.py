"""Every kind of event the journal's timeline holds, and the model of each one's detail. The values are
what the journal stores (a ``StrEnum``: journals written before it read the same). The journal
validates every detail it writes against its kind's model (unknown fields refused), so what the
report and status read has one definition, here."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class EventKind(StrEnum):
    # identification
    INCIDENT_OPENED = "incident_opened"  # the worm, its vectors, signatures and references
    DETECTIONS = "detections"  # detections the sub-area loop saw (items: time, host, signature, source)
    # the stages every phase runs (containment, recovery's applies, remediation's methods)
    STAGE_STARTED = "stage_started"
    STAGE_ENDED = "stage_ended"
    STAGE_INTERRUPTED = "stage_interrupted"  # a stage left running by a killed run
    HOSTS_UNREACHABLE = "hosts_unreachable"  # hosts that did not answer on their management path
    HOST_EXCLUDED = "host_excluded"  # an operator's decision: recovery no longer waits for the host
    LOCK_TAKEN_OVER = "lock_taken_over"  # from a run whose process is gone
    LOCK_RELEASED_BY_OPERATOR = "lock_released_by_operator"
    # containment
    CONTAINMENT_STARTED = "containment_started"
    CONTAINMENT_FINISHED = "containment_finished"
    CONTAINMENT_FAILED = "containment_failed"
    CONTAINMENT_REFUSED = "containment_refused"  # a precondition or the lockout check refused it
    LOCKOUT_REVERTED = "lockout_reverted"  # a change cut management; the dead-man timer restored the ruleset
    SUBAREA_QUARANTINED = "subarea_quarantined"
    SPREAD_STOPPED = "spread_stopped"
    SPREAD_NOT_STOPPED = "spread_not_stopped"
    # remediation
    REMEDIATION_STARTED = "remediation_started"
    REMEDIATION_HOST = "remediation_host"  # a host's remediation state changed
    REMEDIATION_METHOD_FAILED = "remediation_method_failed"
    REMEDIATION_RETRY = "remediation_retry"  # methods retried on hosts disinfected since they failed
    REMEDIATION_CANARY_FAILED = "remediation_canary_failed"
    REMEDIATION_CANARIES_VERIFIED = "remediation_canaries_verified"
    REMEDIATION_MANUAL_DONE = "remediation_manual_done"
    REMEDIATION_FINISHED = "remediation_finished"
    # recovery
    APPROVAL = "approval"  # a signed management approval for an area
    RECOVERY_STARTED = "recovery_started"
    RECOVERY_REFUSED = "recovery_refused"
    RECOVERY_DECLINED = "recovery_declined"
    RECOVERY_RESUMED = "recovery_resumed"
    RECOVERY_HALTED = "recovery_halted"  # a new infection during a soak: the previous posture put back
    RECOVERY_FINISHED = "recovery_finished"


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


class LockoutReverted(Detail):
    stage: str
    hosts: list[str]
    reachable_again: list[str]
    reasons: str


class SubareaQuarantined(Detail):
    sub_areas: list[str]
    dry_run: bool


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


DETAILS: dict[EventKind, type[BaseModel]] = {
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
    EventKind.CONTAINMENT_FAILED: Reason,
    EventKind.CONTAINMENT_REFUSED: Reason,
    EventKind.LOCKOUT_REVERTED: LockoutReverted,
    EventKind.SUBAREA_QUARANTINED: SubareaQuarantined,
    EventKind.SPREAD_STOPPED: SpreadStopped,
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


def detail_json(kind: EventKind, detail: dict[str, Any]) -> str:
    """The detail of an event of ``kind`` as the journal stores it, validated against the kind's model
    (ValueError naming the kind and field when it does not fit: a defect in irm, never operator input).
    The incident's own event stores the incident spec, validated where it is built."""
    if kind not in DETAILS:
        raise ValueError(f"no event kind '{kind}' (the incident's own event stores its spec)")
    model = DETAILS[EventKind(kind)].model_validate(detail)
    return model.model_dump_json(exclude_unset=True)


def parse(kind: str, detail: dict[str, Any]) -> BaseModel | None:
    """An event's detail as its kind's model; None for the incident's own event and for a detail this
    irm cannot read (a newer or older journal's): the timeline still shows the event."""
    try:
        model = DETAILS[EventKind(kind)]
    except (ValueError, KeyError):
        return None
    try:
        return model.model_validate(detail)
    except ValueError:
        return None
