"""Who validated something (a critical flow, a remediation plan) and when: a sign-off that says nothing, or
that is dated in the future, is refused, never read as "validated"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SKEW = timedelta(minutes=5)  # clocks of the machines that wrote the date and of the SOC may differ by this


def check_signoff(by: str | None, at: datetime | None) -> None:
    """``ValueError`` naming the field when ``by`` is blank or ``at`` is later than now."""
    if by is not None and not by.strip():
        raise ValueError("validated_by is blank: name who validated it (or leave both validated_by and "
                         "validated_at out: not validated)")
    if at is not None:
        aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        if aware > datetime.now(UTC) + SKEW:
            raise ValueError(f"validated_at {at.isoformat()} is in the future: give when it was validated")
