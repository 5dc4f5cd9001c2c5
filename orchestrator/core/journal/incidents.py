"""The incidents a journal holds: opened, closed, which one an action works on."""

from __future__ import annotations

import sqlite3

from orchestrator.core.errors import UserError
from orchestrator.core.events import EventKind
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.journal.rows import Incident
from orchestrator.core.journal.store import Repository, event_row, now


class Incidents(Repository):
    """Every incident of the journal."""

    def open(self, spec: IncidentSpec, operator: str) -> Incident:
        at = now()
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO incidents(worm, spec, status, opened_at, opened_by) VALUES (?,?,?,?,?)",
                (spec.worm, spec.model_dump_json(), "open", at, operator),
            )
            incident_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO events(incident_id, time, kind, operator, detail) VALUES (?,?,?,?,?)",
                       (incident_id, at, EventKind.INCIDENT_OPENED, operator, spec.model_dump_json()))
        return Incident(id=incident_id, spec=spec, status="open", opened_at=at, opened_by=operator)

    def close(self, incident_id: int, operator: str, forced: bool, reason: str | None,
                       still_held: dict[str, str]) -> None:
        with self.store.tx() as db:
            db.execute("UPDATE incidents SET status='closed', closed_at=? WHERE id=?", (now(), incident_id))
            event_row(db, incident_id, now(), EventKind.INCIDENT_CLOSED, None, operator,
                       {"forced": forced, "reason": reason, "still_held": still_held})

    def _row(self, row: sqlite3.Row) -> Incident:
        return Incident(id=row["id"], spec=IncidentSpec.model_validate_json(row["spec"]), status=row["status"],
                        opened_at=row["opened_at"], opened_by=row["opened_by"])

    def all(self) -> list[Incident]:
        return [self._row(r) for r in self.store.db.execute("SELECT * FROM incidents ORDER BY id")]

    def get(self, incident_id: int) -> Incident:
        row = self.store.db.execute("SELECT * FROM incidents WHERE id=?", (incident_id,)).fetchone()
        if row is None:
            raise UserError(f"journal {self.store.path}: no incident {incident_id}")
        return self._row(row)

    def open_for(self, incident_id: int | None) -> Incident:
        """The incident an action works on: the given one (it must be open) or the only open one."""
        if incident_id is not None:
            inc = self.get(incident_id)
            if inc.status != "open":
                raise UserError(f"incident {incident_id} is {inc.status}, not open")
            return inc
        open_ = [i for i in self.all() if i.status == "open"]
        if not open_:
            raise UserError(f"no open incident in journal {self.store.path}: record the worm first with "
                            "'irm incident open --worm NAME --vector tcp/PORT'")
        if len(open_) > 1:
            ids = ", ".join(str(i.id) for i in open_)
            raise UserError(f"several open incidents ({ids}) in journal {self.store.path}: choose one with "
                            "--incident ID")
        return open_[0]
