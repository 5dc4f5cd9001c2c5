"""The containment policy: the crisis cell's decision, taken in peacetime, of what irm may contain on its
own when detections cross a threshold. A YAML file, signed by the approvers the inventory lists (SSH
keys, ``ssh-keygen -Y``, namespace ``irm-policy``: a recovery approval never verifies as a policy);
``irm watch`` refuses a policy that is unsigned, signed by fewer approvers than it requires, changed
since it was signed, not yet or no longer valid, or unsafe for the inventory.

Signatures sit beside the policy in ``<policy>.sig`` (JSON lines, one per approver): who signed, with
which key, when, and the signature over the policy file's exact bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.containment.table import STAGES
from orchestrator.core import sshsig
from orchestrator.core.detection import BOUNDARY_SOURCE
from orchestrator.core.errors import UserError
from orchestrator.core.incident import IncidentSpec, Vector
from orchestrator.core.inventory import Inventory
from orchestrator.core.safefile import PLAN_MAX, read_bounded
from orchestrator.core.yamlfile import excerpt, safe_load, validation_error

NAMESPACE = "irm-policy"
SIG_MAX = 64 * 1024
AUTOMATIC_STAGES = tuple(p.name for p in STAGES)  # the stages a policy may run on its own, in their order


class Trigger(BaseModel):
    """When an area is contained: detections in one of its sub-areas within ``within_seconds``, from
    enough of them and enough distinct sources, or one from a source the cell trusts on its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    within_seconds: int = Field(default=60, ge=1, le=86400)
    min_detections: int = Field(default=3, ge=1, le=100000)
    min_sources: int = Field(default=1, ge=1, le=20)
    trusted_sources: tuple[str, ...] = ()  # labels of detection sources one detection of which suffices


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_areas_per_hour: int = Field(default=2, ge=1, le=1000)


class IncidentTemplate(BaseModel):
    """The incident the watcher opens when none is open: the worm's label and the vectors the cut blocks
    (decided in advance: the trigger's detections add their signatures)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worm: str = Field(default="unidentified worm (automatic containment)", min_length=1, max_length=200)
    vectors: tuple[Vector, ...] = Field(min_length=1)

    _vectors = field_validator("vectors", mode="before")(IncidentSpec._vectors_from_text.__func__)  # type: ignore[attr-defined]
    _worm = field_validator("worm")(IncidentSpec._plain.__func__)  # type: ignore[attr-defined]


class ContainmentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    valid_from: datetime
    valid_until: datetime
    approvers_required: int = Field(default=2, ge=1, le=20)
    areas: tuple[str, ...] = Field(min_length=1)  # the areas that may be contained automatically
    through: str = "isolate"  # the last stage run automatically (every stage before it runs too)
    # the sub-area loop, automatically: in an area the policy holds, each sub-area that crosses the trigger
    # (the boundaries' drop counters among the sources) is quarantined at its gateway
    quarantine: bool = False
    trigger: Trigger = Trigger()
    limits: Limits = Limits()
    incident: IncidentTemplate

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00Z)")
        return value.astimezone(UTC)

    @field_validator("through")
    @classmethod
    def _stage(cls, value: str) -> str:
        if value not in AUTOMATIC_STAGES:
            raise ValueError(f"'{excerpt(value)}' is not a containment stage ({', '.join(AUTOMATIC_STAGES)})")
        return value

    @model_validator(mode="after")
    def _period(self) -> ContainmentPolicy:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must come after valid_from")
        if self.quarantine and self.through == AUTOMATIC_STAGES[0]:
            raise ValueError(f"quarantine: a sub-area is quarantined at its area's gateway, after isolation: give "
                             f"through: {AUTOMATIC_STAGES[1]} or later")
        return self

    @property
    def through_number(self) -> int:
        return next(p.number for p in STAGES if p.name == self.through)


def load(path: Path) -> tuple[ContainmentPolicy, bytes]:
    """The policy and the exact bytes its signatures cover; a one-line error naming the file otherwise."""
    raw = read_bounded(path, "--policy", PLAN_MAX)
    try:
        data = safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a YAML containment policy ({excerpt(str(exc), 80)})") from None
    except Exception as exc:  # yaml.YAMLError and its marks
        raise UserError(f"{path}: not valid YAML ({excerpt(str(getattr(exc, 'problem', exc)), 80)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping (name, valid_from, valid_until, areas, trigger, incident)")
    try:
        return ContainmentPolicy.model_validate(data), raw
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None


def problems(policy: ContainmentPolicy, inv: Inventory, where: str) -> list[str]:
    """Why this policy is unsafe for this inventory, one line each (empty when it is not)."""
    out = []
    for name in policy.areas:
        if name not in inv.areas:
            out.append(f"{where}: areas: '{excerpt(name)}' is not an area of {inv.source}")
        elif not inv.areas[name].auto_contain:
            out.append(f"{where}: areas: '{name}' is marked irm_auto_contain: never in {inv.source}")
    # "boundary": irm's own drop counters (identification.boundary), a source wherever irm holds a boundary
    known = {s.label for s in inv.detection_sources} | {s.kind for s in inv.detection_sources} | {BOUNDARY_SOURCE}
    for label in policy.trigger.trusted_sources:
        if known and label not in known:
            out.append(f"{where}: trigger.trusted_sources: '{excerpt(label)}' is not a detection source of "
                       f"{inv.source} ({', '.join(sorted(known))})")
    if policy.approvers_required > len(inv.approvers):
        out.append(f"{where}: approvers_required {policy.approvers_required}, but {inv.source} lists "
                   f"{len(inv.approvers)} approver(s)")
    return out


def sig_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def sign(path: Path, inv: Inventory, keyfile: Path) -> dict[str, str]:
    """Add the approver of ``keyfile``'s signature over the policy file to its ``.sig`` file."""
    _, raw = load(path)
    approver = sshsig.approver_for_key(inv, sshsig.public_key_of(keyfile))
    signature = sshsig.sign(raw.decode("utf-8"), keyfile, NAMESPACE)
    row = {"approver": approver.name, "role": approver.role,
           "fingerprint": sshsig.fingerprint(sshsig.approver_key(inv, approver)),
           "signed_at": datetime.now(UTC).isoformat(timespec="seconds"), "sha256": digest(raw),
           "signature": signature}
    kept = [r for r in _signatures(path) if r.get("approver") != approver.name]
    target = sig_path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in [*kept, row])
    os.replace(tmp, target)
    return row


def _signatures(path: Path) -> list[dict[str, Any]]:
    target = sig_path(path)
    if not target.exists():
        return []
    rows = []
    for n, line in enumerate(read_bounded(target, "policy signatures", SIG_MAX).decode("utf-8", "replace")
                             .splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{target}:{n}: not a signature line (JSON)") from None
        if not isinstance(row, dict):
            raise UserError(f"{target}:{n}: not a signature line (JSON object)")
        rows.append(row)
    return rows


def verified(path: Path, inv: Inventory, at: datetime | None = None) -> tuple[ContainmentPolicy, list[str], str]:
    """The policy, the approvers whose signatures verify over its current bytes, and its digest; a
    ``UserError`` naming every reason when it may not be executed at ``at`` (now by default)."""
    policy, raw = load(path)
    when = at or datetime.now(UTC)
    why = problems(policy, inv, str(path))
    signers: list[str] = []
    text = raw.decode("utf-8")
    for row in _signatures(path):
        name = str(row.get("approver", ""))
        approver = next((a for a in inv.approvers if a.name == name), None)
        if approver is None or name in signers:
            continue
        if sshsig.verify(text, str(row.get("signature", "")), approver.name, sshsig.approver_key(inv, approver),
                         NAMESPACE):
            signers.append(name)
    if len(signers) < policy.approvers_required:
        signed = f"signed by {', '.join(signers)}" if signers else "signed by no listed approver"
        changed = any(r.get("sha256") not in (None, digest(raw)) for r in _signatures(path))
        why.append(f"{path}: {signed} over its current content; {policy.approvers_required} required"
                   + (" (the file changed since it was signed)" if changed else "")
                   + f": irm policy sign {path} --key KEY")
    if when < policy.valid_from:
        why.append(f"{path}: valid from {policy.valid_from.isoformat()}, not yet")
    if when >= policy.valid_until:
        why.append(f"{path}: expired at {policy.valid_until.isoformat()}")
    if why:
        raise UserError(*why)
    return policy, signers, digest(raw)
