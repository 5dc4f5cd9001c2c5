"""Remediation: the stored plans and each host's current state."""

from __future__ import annotations

import json
from typing import Any, cast

from orchestrator.core.events import EventKind
from orchestrator.core.journal.rows import RemediationRow
from orchestrator.core.journal.store import Repository, event_row, now


class Remediation(Repository):
    """Plans and per-host remediation states."""

    def store_plan(self, incident_id: int, area: str, name: str, plan: dict[str, Any], source: str,
                   operator: str) -> int:
        with self.store.tx() as db:
            cur = db.execute("INSERT INTO plans(incident_id, area, name, plan, source, stored_at, stored_by) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (incident_id, area, name, json.dumps(plan, default=str), source, now(), operator))
            return int(cur.lastrowid or 0)

    def latest_plan(self, incident_id: int, area: str) -> dict[str, Any] | None:
        row = self.store.db.execute("SELECT plan FROM plans WHERE incident_id=? AND area=? ORDER BY id DESC LIMIT 1",
                              (incident_id, area)).fetchone()
        return dict(json.loads(row["plan"])) if row else None

    def set(self, incident_id: int, area: str, host: str, state: str, operator: str,
                        method: str | None = None, **detail: Any) -> None:
        """A host's current remediation state; every change is also an event (the history)."""
        with self.store.tx() as db:
            db.execute("INSERT INTO remediation(incident_id, area, host, state, method, detail, updated_at, updated_by)"
                       " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET state=excluded.state,"
                       " method=COALESCE(excluded.method, remediation.method), detail=excluded.detail,"
                       " updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                       (incident_id, area, host, state, method, json.dumps(detail, default=str), now(), operator))
            event_row(db, incident_id, now(), EventKind.REMEDIATION_HOST, area, operator,
                       {"host": host, "state": state, "method": method, **detail})

    def of(self, incident_id: int, area: str | None = None) -> dict[str, RemediationRow]:
        sql = "SELECT * FROM remediation WHERE incident_id=?" + (" AND area=?" if area else "") + " ORDER BY host"
        args: tuple[Any, ...] = (incident_id, area) if area else (incident_id,)
        return {r["host"]: cast(RemediationRow, {**dict(r), "detail": json.loads(r["detail"])})
                for r in self.store.db.execute(sql, args)}
