"""Management approval by identity: an SSH signature, not a typed name.

The inventory lists the approvers and their SSH public keys (``irm_approvers``). ``irm approve --area
X --key FILE`` writes a statement (incident, area, the journal's remediation state of the area and the
hosts excluded from it, time, approver, reason) and signs it with ``ssh-keygen -Y sign``: the key may be
a private key file only its owner can read (passphrase-protected or not: ssh-keygen asks), or the public
key of one held in the approver's SSH agent. ``irm recover`` verifies it with ``ssh-keygen -Y verify``
against the approvers listed *now*, and requires the approval to postdate the area's last remediation
and last exclusion (the states it names must still be the journal's). Four-eyes holds by identity, not by
a declared name: the operator may not be the approver (names compared case-insensitively, and any listed
approver sharing the signing key counts as the same person), and the key that signed may not be loaded
in the operator's own SSH agent. The statement and signature are journaled and shown in the report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Approver, Inventory
from orchestrator.core.journal import ApprovalRow, Incident, Journal, now
from orchestrator.core.sshsig import (
    agent_keys,
    approver_for_key,
    approver_key,
    fingerprint,
    public_key_of,
    sign,
    verify,
)
from orchestrator.core.stream import DecisionNeeded, EventStream
from orchestrator.crisis import notify

NAMESPACE = "irm-approval"  # ssh-keygen -Y namespace: a signature made for anything else never verifies here
HEADER = "irm recovery approval v1"


@dataclass(frozen=True)
class RemediationState:
    digest: str
    hosts: int
    last_change: str | None


def remediation_state(journal: Journal, incident_id: int, area: str) -> RemediationState:
    """A digest of the area's remediation rows (host, state, method, when): any remediation after an
    approval changes it."""
    rows = journal.remediation.of(incident_id, area)
    canon = json.dumps([[h, r["state"], r.get("method"), r["updated_at"]] for h, r in sorted(rows.items())])
    last = max((r["updated_at"] for r in rows.values()), default=None)
    return RemediationState("sha256:" + hashlib.sha256(canon.encode()).hexdigest(), len(rows), last)


def exclusions_state(inv: Inventory, journal: Journal, incident_id: int, area: str) -> RemediationState:
    """A digest of the hosts of the area that irm was told to leave out (host, reason, by, when): an
    exclusion recorded after an approval changes it."""
    rows = {h: r for h, r in journal.hosts.rows(incident_id).items() if r.get("excluded_reason")
            and (r.get("area") == area or (h in inv.hosts and inv.hosts[h].area == area))}
    canon = json.dumps([[h, r["excluded_reason"], r["excluded_by"], r["excluded_at"]] for h, r in sorted(rows.items())])
    last = max((str(r["excluded_at"]) for r in rows.values()), default=None)
    return RemediationState("sha256:" + hashlib.sha256(canon.encode()).hexdigest(), len(rows), last)


def statement(incident: Incident, area: str, state: RemediationState, approver: Approver, at: str,
              reason: str, excluded: RemediationState) -> str:
    return "\n".join([
        HEADER,
        f"incident: {incident.id} ({incident.spec.worm})",
        f"area: {area}",
        f"remediation: {state.digest} ({state.hosts} hosts, last change {state.last_change})",
        f"exclusions: {excluded.digest} ({excluded.hosts} hosts, last change {excluded.last_change})",
        f"approver: {approver.name} ({approver.role})",
        f"time: {at}",
        f"reason: {reason}",
    ]) + "\n"


def parse_statement(text: str) -> dict[str, str]:
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        return {}
    out = {}
    for line in lines[1:]:
        key, _, value = line.partition(": ")
        out[key] = value
    return out


def approve(inv: Inventory, journal: Journal, incident: Incident, area: str, keyfile: Path, reason: str,
            recorded_by: str, events: EventStream | None = None) -> dict[str, Any]:
    """Sign and journal an approval for ``area``; refuses before the area's remediation is recorded. The
    approval is published on ``events`` as the decision the crisis cell now needs (when to reconnect)."""
    approver = approver_for_key(inv, public_key_of(keyfile))
    state = remediation_state(journal, incident.id, area)
    if state.hosts == 0:
        raise UserError(f"approve: no remediation recorded for '{area}' in incident {incident.id}: approval "
                        "certifies a remediation state, remediate first (irm remediate --area ...)")
    at = now()
    text = statement(incident, area, state, approver, at, reason,
                     exclusions_state(inv, journal, incident.id, area))
    signature = sign(text, keyfile, NAMESPACE)
    fp = fingerprint(approver_key(inv, approver))
    journal.decisions.approve(incident.id, area, approver.name, approver.role, reason, at, text, signature, fp,
                              recorded_by)
    stream = events or EventStream()
    notify.listen(stream, inv, journal)
    stream.publish(DecisionNeeded(incident.id, "recovery approved", (area,),
                                  (f"recovery of {area} approved by {approver.name} ({approver.role}): {reason}",),
                                  f"when to start reconnecting {area} ('irm recover --area {area}')", recorded_by))
    return {"approver": approver.name, "role": approver.role, "fingerprint": fp, "remediation": state.digest}


def approval_problems(inv: Inventory, journal: Journal, incident: Incident, area: str, operator: str) -> list[str]:
    """Empty when one journaled approval for ``area`` verifies; else why none does, one line each."""
    how = f"an approver signs with 'irm approve --area {area} --key FILE --reason TEXT'"
    rows = [a for a in journal.decisions.approvals(incident.id) if a.get("area") == area]
    if not inv.approvers:
        return [f"no approvers listed in {inv.source} (irm_approvers: name, role, key): nobody can approve recovery"]
    if not rows:
        return [f"no management approval for '{area}' in incident {incident.id}: {how}"]
    state = remediation_state(journal, incident.id, area)
    problems = []
    for row in rows:
        label = f"approval {row['id']} by {row['approved_by']}"
        why = _rejected(inv, journal, incident, area, state, operator, row)
        if why is None:
            return []
        problems.append(f"{label} does not count: {why}")
    return [*problems, how]


def _rejected(inv: Inventory, journal: Journal, incident: Incident, area: str, state: RemediationState,
              operator: str, row: ApprovalRow) -> str | None:
    statement, signature = row["statement"], row["signature"]
    if not signature or not statement:
        return "it is not signed (recorded by an older irm with a typed name)"
    approver = next((a for a in inv.approvers if a.name == row["approved_by"]), None)
    if approver is None:
        return f"'{row['approved_by']}' is no longer a listed approver"
    if not verify(statement, signature, approver.name, approver_key(inv, approver), NAMESPACE):
        return f"the signature does not verify with {approver.name}'s key listed now"
    fields = parse_statement(statement)
    if fields.get("incident", "").split(" ")[0] != str(incident.id) or fields.get("area") != area:
        return "it was signed for another incident or area"
    same = _same_person(inv, approver, operator)
    if same:
        return f"{same}: another person must approve (four-eyes)"
    if not fields.get("remediation", "").startswith(state.digest + " "):
        return (f"the area's remediation changed after it was signed (last change {state.last_change}): the "
                "approval must postdate the last remediation")
    excluded = exclusions_state(inv, journal, incident.id, area)
    if not fields.get("exclusions", "").startswith(excluded.digest + " "):
        return (f"a host was excluded after it was signed (last exclusion {excluded.last_change}): the approval "
                "must cover every exclusion (irm exclude), sign again")
    signed_at = fields.get("time", "")
    if state.last_change and (not signed_at or _t(signed_at) < _t(state.last_change)):
        return "it predates the area's last remediation"
    return None


def _same_person(inv: Inventory, approver: Approver, operator: str) -> str | None:
    """Why the operator is the approver, if they are: the same name whatever its case, another listed
    approver with the same key, or the signing key loaded in the operator's own SSH agent."""
    key = fingerprint(approver_key(inv, approver))
    wanted = operator.strip().casefold()
    if approver.name.strip().casefold() == wanted:
        return f"{approver.name} runs this recovery"
    for listed in inv.approvers:
        if listed.name.strip().casefold() == wanted and fingerprint(approver_key(inv, listed)) == key:
            return f"{operator} runs this recovery and is listed with the key that signed it ({approver.name}'s)"
    if key in agent_keys():
        return f"the key that signed it ({key}) is loaded in this operator's SSH agent"
    return None


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)
