"""Every kind of event the journal's timeline holds, and the model of each one's detail. The values are
what the journal stores (a ``StrEnum``: journals written before it read the same). The journal
validates every detail it writes against its kind's model (``event_details``, imported when the first
event is written, so the views that only read start fast; unknown fields refused), so what the report
and status read has one definition."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel


class EventKind(StrEnum):
    # identification
    INCIDENT_OPENED = "incident_opened"  # the worm, its vectors, signatures and references
    INCIDENT_CLOSED = "incident_closed"  # every area recovered, or forced with a reason
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
    BOUNDARY_DROPS = "boundary_drops"  # a boundary's drop counter rose for a sub-area: the worm's attempts
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
    # automatic containment (irm watch, under a signed policy)
    WATCH_STARTED = "watch_started"  # the watcher runs the policy (its digest and who signed it)
    WATCH_TRIGGERED = "watch_triggered"  # areas crossed the policy's trigger: contained automatically
    WATCH_QUARANTINED = "watch_quarantined"  # sub-areas of an area it holds crossed the trigger: quarantined
    WATCH_REFUSED = "watch_refused"  # areas crossed it but the policy's limits or exclusions held irm back
    WATCH_PAUSED = "watch_paused"  # an operator stopped automatic action (the watcher keeps watching)
    WATCH_RESUMED = "watch_resumed"
    WATCH_SOURCE = "watch_source"  # a detection source the watcher reads stopped vouching, or came back
    # the crisis cell
    NOTIFIED = "notified"  # the crisis cell was told (by email, webhook)
    NOTIFY_FAILED = "notify_failed"  # a channel failed: journaled and shown, never blocking



def detail_json(kind: EventKind, detail: dict[str, Any]) -> str:
    """The detail of an event of ``kind`` as the journal stores it, validated against the kind's model
    (ValueError naming the kind and field when it does not fit: a defect in irm, never operator input).
    The incident's own event stores the incident spec, validated where it is built."""
    from orchestrator.core.event_details import DETAILS

    if kind not in DETAILS:
        raise ValueError(f"no event kind '{kind}' (the incident's own event stores its spec)")
    model = DETAILS[EventKind(kind)].model_validate(detail)
    return model.model_dump_json(exclude_unset=True)


def parse(kind: str, detail: dict[str, Any]) -> BaseModel | None:
    """An event's detail as its kind's model; None for the incident's own event and for a detail this
    irm cannot read (a newer or older journal's): the timeline still shows the event."""
    from orchestrator.core.event_details import DETAILS

    try:
        model = DETAILS[EventKind(kind)]
    except (ValueError, KeyError):
        return None
    try:
        return model.model_validate(detail)
    except ValueError:
        return None
