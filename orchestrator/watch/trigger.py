"""The policy's trigger over the detections seen: pure, no I/O.

An area triggers when one of its sub-areas (or, for a host irm cannot place in one, the area itself)
has, within the policy's window ending now, at least ``min_detections`` infection detections from at
least ``min_sources`` distinct detection sources, or one detection from a source the policy trusts on
its own. Only the policy's areas can trigger; a detection of any other area is ignored, whatever it
says (a forged alert names the area it likes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.core.detection import Detection
from orchestrator.watch.policy import ContainmentPolicy


@dataclass(frozen=True)
class Seen:
    """A detection, the label of the source that reported it and that source's kind."""

    detection: Detection
    source: str
    kind: str = ""

    def trusted(self, names: tuple[str, ...]) -> bool:
        """The policy trusts this source on its own: named by its label or by its kind."""
        return self.source in names or (bool(self.kind) and self.kind in names)


def triggered_segments(policy: ContainmentPolicy, seen: list[Seen], now: datetime) -> dict[tuple[str, str], str]:
    """(area, sub-area) -> why it triggers, for every sub-area of the policy's areas that does (a
    detection irm cannot place in a sub-area counts for the area itself: (area, area))."""
    start = now - timedelta(seconds=policy.trigger.within_seconds)
    groups: dict[str, dict[str, list[Seen]]] = defaultdict(lambda: defaultdict(list))
    for s in seen:
        d = s.detection
        if d.area in policy.areas and d.infection and start <= d.time <= now:
            groups[d.area][d.segment or d.area].append(s)
    out: dict[tuple[str, str], str] = {}
    for area in policy.areas:
        for segment, items in sorted(groups.get(area, {}).items()):
            trusted = sorted({s.source for s in items if s.trusted(policy.trigger.trusted_sources)})
            sources = sorted({s.source for s in items})
            if trusted:
                out[(area, segment)] = f"{segment}: a detection from trusted source {', '.join(trusted)}"
            elif len(items) >= policy.trigger.min_detections and len(sources) >= policy.trigger.min_sources:
                out[(area, segment)] = (f"{segment}: {len(items)} detection(s) from {', '.join(sources)} within "
                                        f"{policy.trigger.within_seconds}s")
    return out


def triggered(policy: ContainmentPolicy, seen: list[Seen], now: datetime) -> dict[str, str]:
    """area -> why it triggers (its first sub-area that does, how many detections from which sources),
    for each of the policy's areas that does, in the policy's order."""
    out: dict[str, str] = {}
    for (area, _), why in triggered_segments(policy, seen, now).items():
        out.setdefault(area, why)
    return out
