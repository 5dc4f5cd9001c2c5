"""What people decided: management's signed approvals, the crisis cell's notes and action items."""

from __future__ import annotations

from typing import cast

from orchestrator.core.events import EventKind
from orchestrator.core.journal.rows import ActionRow, ApprovalRow, NoteRow
from orchestrator.core.journal.store import Repository, event_row, now


class Decisions(Repository):
    """Approvals, notes and action items."""

    def approve(self, incident_id: int, area: str, approved_by: str, role: str, reason: str, approved_at: str,
                statement: str, signature: str, key_fingerprint: str, recorded_by: str) -> int:
        """A signed approval: the statement exactly as signed, its SSH signature and the key's fingerprint."""
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO approvals(incident_id, area, approved_by, role, reason, approved_at, recorded_by,"
                " statement, signature, key_fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (incident_id, area, approved_by, role, reason, approved_at, recorded_by, statement, signature,
                 key_fingerprint))
            event_row(db, incident_id, now(), EventKind.APPROVAL, area, recorded_by,
                       {"approved_by": approved_by, "role": role, "reason": reason,
                        "key_fingerprint": key_fingerprint, "signed": True})
            return int(cur.lastrowid or 0)

    def approvals(self, incident_id: int) -> list[ApprovalRow]:
        rows = self.store.db.execute("SELECT * FROM approvals WHERE incident_id=? ORDER BY id", (incident_id,))
        return [cast(ApprovalRow, dict(r)) for r in rows]

    def add_note(self, incident_id: int, text: str, kind: str, by: str) -> int:
        with self.store.tx() as db:
            cur = db.execute("INSERT INTO notes(incident_id, text, kind, by, at) VALUES (?,?,?,?,?)",
                             (incident_id, text, kind, by, now()))
            return int(cur.lastrowid or 0)

    def notes(self, incident_id: int) -> list[NoteRow]:
        rows = self.store.db.execute("SELECT * FROM notes WHERE incident_id=? ORDER BY id", (incident_id,))
        return [cast(NoteRow, dict(r)) for r in rows]

    def add_action(self, incident_id: int, text: str, owner: str, react: str | None, due: str | None,
                   added_by: str) -> int:
        with self.store.tx() as db:
            cur = db.execute("INSERT INTO actions(incident_id, text, owner, react, due, added_by, added_at) "
                             "VALUES (?,?,?,?,?,?,?)", (incident_id, text, owner, react, due, added_by, now()))
            return int(cur.lastrowid or 0)

    def actions(self, incident_id: int) -> list[ActionRow]:
        rows = self.store.db.execute("SELECT * FROM actions WHERE incident_id=? ORDER BY id", (incident_id,))
        return [cast(ActionRow, dict(r)) for r in rows]
