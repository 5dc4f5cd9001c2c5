"""Telling the crisis cell from a command (``core.notify``): one line per channel, never an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.cli.app import console, err_console

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory
    from orchestrator.core.journal import Journal


def tell(inv: Inventory, journal: Journal, incident: int, event: str, areas: list[str], done: list[str],
         next_decision: str, operator: str) -> None:
    """Send on every configured channel; print what was sent and what failed (journaled either way)."""
    if inv.notify.smtp is None and inv.notify.webhook is None:
        return
    from orchestrator.crisis.notify import Message, notify

    for d in notify(inv, journal, Message(incident, event, areas, done, next_decision), operator):
        if d.ok:
            console.print(f"crisis cell told by {d.channel} ({len(d.recipients)} recipient(s)): {event}")
        else:
            err_console.print(f"crisis cell NOT told by {d.channel}: {d.error} (journaled; the response goes on)")
