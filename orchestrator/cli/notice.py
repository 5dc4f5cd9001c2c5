"""What the crisis-cell notifier did, printed for the operator: a listener of a run's event stream that
prints one line per channel (``core.stream.NotificationSent``), never an error."""

from __future__ import annotations

from orchestrator.cli.app import console, err_console
from orchestrator.core import stream


def shown(event: stream.Event) -> None:
    if not isinstance(event, stream.NotificationSent):
        return
    if event.ok:
        console.print(f"crisis cell told by {event.channel} ({len(event.recipients)} recipient(s)): {event.event}",
                      markup=False, highlight=False)
    else:
        err_console.print(f"crisis cell NOT told by {event.channel}: {event.error} (journaled; the response goes on)",
                          markup=False, highlight=False)


def faults(events: stream.EventStream) -> None:
    """The listeners the run dropped because they raised (the run went on without them)."""
    for fault in events.faults:
        err_console.print(f"irm: a listener of this run stopped: {fault}", markup=False, highlight=False)
