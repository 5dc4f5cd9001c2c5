"""An incident just opened, told to the crisis cell: the decision it needs first is the perimeter."""

from __future__ import annotations

from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import Journal
from orchestrator.core.stream import DecisionNeeded, EventStream
from orchestrator.crisis import notify


def announce(inv: Inventory, journal: Journal, incident: int, spec: IncidentSpec, operator: str,
             events: EventStream | None = None) -> None:
    """Publish the opening on ``events`` (the crisis-cell notifier listening when a channel is set)."""
    stream = events or EventStream()
    notify.listen(stream, inv, journal)
    stream.publish(DecisionNeeded(
        incident, "incident opened", (),
        (f"incident {incident} opened by {operator}: {spec.worm}, vectors {', '.join(map(str, spec.vectors))}",),
        "the perimeter and which areas to contain ('irm identify', then 'irm contain --area AREA')", operator))
