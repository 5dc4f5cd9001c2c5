"""What the phases know of detections: the ``Detection`` record and the ``DetectionSource`` interface
the containment loop and recovery's soaks read. The sources themselves (AV logs, Suricata, Wazuh,
Defender) belong to identification (``identification.sources``): an AV console, EDR or IDS feed plugs
in by implementing ``DetectionSource``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from orchestrator.core.safetext import shown

# Detections count from this long before the incident was opened: the worm was there before anyone
# opened the incident (the sub-area loop, --detected and status all look back the same way).
LOOKBACK = timedelta(hours=24)
BOUNDARY_SOURCE = "boundary"  # the label and kind of irm's own drop counters as a detection source


def watch_start(opened_at: str, lookback: timedelta = LOOKBACK) -> datetime:
    """From when an incident opened at ``opened_at`` takes its detections into account."""
    return datetime.fromisoformat(opened_at) - lookback


@dataclass(frozen=True)
class Detection:
    time: datetime
    host: str
    signature: str
    action: str
    source_address: str | None
    segment: str | None
    area: str | None
    vector: str | None = None  # the propagation port a network detection saw (tcp/445), when it says
    network: bool = False  # an IDS alert on traffic (its signature names the exploit, not the malware)

    def __post_init__(self) -> None:
        # an alert's fields are the attacker's to choose: kept as irm prints them (escaped, bounded)
        for name in ("signature", "action", "source_address"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, shown(value))

    @property
    def infection(self) -> bool:
        """The host is (still) infected: detected, or blocked by an IPS (the worm tried and was stopped),
        or acted on by the AV. Only the record of irm's own disinfection ("cleaned") is not a sign."""
        return self.action != "cleaned"


class DetectionSource(Protocol):
    def detections(self, since: datetime) -> list[Detection]:
        """Detections at or after ``since``, oldest first."""
        ...

    def problems(self, now: datetime) -> list[str]:
        """Why the source cannot vouch for "no detection" at ``now`` (unreadable, silent, its clock ahead),
        one line each; empty when it can."""
        ...


@dataclass(frozen=True)
class Drop:
    """A rise of a boundary's drop counter for one sub-area: the detection it makes, how many attempts
    were dropped since the last reading and how many since the boundary's table was loaded."""

    detection: Detection
    packets: int
    total: int


class DropSensor(Protocol):
    """The boundaries as a detection source (``identification.boundary``): read live on each ``poll``."""

    def poll(self, skip: Collection[str] = ()) -> list[Drop]:
        """Read the counters now: a rise for each sub-area not in ``skip``."""
        ...

    def problems(self, now: datetime) -> list[str]:
        """The boundaries the last ``poll`` could not read, one line each."""
        ...
