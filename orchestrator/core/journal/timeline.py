"""The timeline: every event of every incident (and the watcher's own, of none)."""

from __future__ import annotations

import json
from typing import Any, cast

from orchestrator.core.events import EventKind
from orchestrator.core.journal.rows import EventRow
from orchestrator.core.journal.store import Repository, event_row, now


class Timeline(Repository):
    """The events table."""

    def add(self, incident_id: int | None, kind: EventKind, operator: str, area: str | None = None,
              **detail: Any) -> None:
        with self.store.tx() as db:
            event_row(db, incident_id, now(), kind, area, operator, detail)

    def of(self, incident_id: int) -> list[EventRow]:
        rows = self.store.db.execute("SELECT * FROM events WHERE incident_id=? ORDER BY time, id", (incident_id,))
        return [cast(EventRow, {**dict(r), "detail": json.loads(r["detail"])}) for r in rows]

    def of_kinds(self, kinds: tuple[EventKind, ...], since: str = "") -> list[EventRow]:
        """Events of these kinds in any incident or none (the watcher's own), at or after ``since``."""
        marks = ",".join("?" * len(kinds))
        rows = self.store.db.execute(f"SELECT * FROM events WHERE kind IN ({marks}) AND time>=? ORDER BY time, id",
                               (*kinds, since))
        return [cast(EventRow, {**dict(r), "detail": json.loads(r["detail"])}) for r in rows]
