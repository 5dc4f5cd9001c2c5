"""Hosts: whether each answers, what each enforces, operator exclusions, the policies planned for them."""

from __future__ import annotations

import json
from typing import Any, cast

from orchestrator.core.events import EventKind
from orchestrator.core.journal.rows import HostRow
from orchestrator.core.journal.store import Repository, event_row, now


class Hosts(Repository):
    """The hosts and policies tables."""

    def set_reach(self, incident_id: int, area: str | None, hosts: list[str], reach: str, stage: str) -> None:
        if not hosts:
            return
        at = now()
        with self.store.tx() as db:
            db.executemany("INSERT INTO hosts(incident_id, host, area, reach, reach_at, reach_stage) "
                           "VALUES (?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET "
                           "area=COALESCE(excluded.area, hosts.area), reach=excluded.reach, "  # since when, first stage
                           "reach_at=CASE WHEN hosts.reach=excluded.reach THEN hosts.reach_at "
                           "ELSE excluded.reach_at END, "
                           "reach_stage=CASE WHEN hosts.reach=excluded.reach THEN hosts.reach_stage "
                           "ELSE excluded.reach_stage END",
                           [(incident_id, h, area, reach, at, stage) for h in hosts])
            if reach == "unreachable":
                event_row(db, incident_id, at, EventKind.HOSTS_UNREACHABLE, area, "irm",
                           {"hosts": sorted(hosts), "stage": stage})

    def exclude(self, incident_id: int, area: str | None, host: str, reason: str, operator: str) -> None:
        at = now()
        with self.store.tx() as db:
            db.execute("INSERT INTO hosts(incident_id, host, area, excluded_reason, excluded_by, excluded_at) "
                       "VALUES (?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET "
                       "excluded_reason=excluded.excluded_reason, excluded_by=excluded.excluded_by, "
                       "excluded_at=excluded.excluded_at", (incident_id, host, area, reason, operator, at))
            event_row(db, incident_id, at, EventKind.HOST_EXCLUDED, area, operator,
                       {"host": host, "reason": reason})

    def enforced(self) -> dict[str, str]:
        """host -> the newest fingerprint any incident of this journal recorded for it."""
        rows = self.store.db.execute("SELECT host, fingerprint FROM hosts WHERE fingerprint IS NOT NULL "
                               "ORDER BY fingerprint_at")
        return {r["host"]: r["fingerprint"] for r in rows}

    def known_tables(self) -> dict[str, set[str]]:
        """host -> every table this journal recorded a host enforcing or planned for it (a stage's planned
        table is live on the host when a kill lands between its confirm and the journal's write)."""
        out: dict[str, set[str]] = {}
        for r in self.store.db.execute("SELECT host, fingerprint FROM hosts WHERE fingerprint IS NOT NULL"):
            out.setdefault(r["host"], set()).add(r["fingerprint"])
        for r in self.store.db.execute("SELECT detail FROM stages WHERE check_mode=0"):
            planned = json.loads(r["detail"]).get("planned") or {}
            for host, fp in planned.items() if isinstance(planned, dict) else ():
                out.setdefault(str(host), set()).add(str(fp))
        return out

    def remember_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        """Keep each planned policy under its fingerprint, so that a later apply can tell what a device that
        cannot compute fingerprints (IOS, Windows) may hold: the rendering of one of these."""
        with self.store.db:
            self.store.db.executemany("INSERT OR IGNORE INTO policies (fingerprint, policy, first_at) VALUES (?, ?, ?)",
                                [(fp, json.dumps(p, sort_keys=True), now()) for fp, p in policies.items()])

    def policies(self, fingerprints: set[str]) -> dict[str, dict[str, Any]]:
        """The policies kept under these fingerprints (those journaled before irm kept them are missing)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.store.db.execute("SELECT fingerprint, policy FROM policies"):
            if r["fingerprint"] in fingerprints:
                out[r["fingerprint"]] = json.loads(r["policy"])
        return out

    def rows(self, incident_id: int) -> dict[str, HostRow]:
        """The incident's rows; what each host enforces is the newest fingerprint any incident of this
        journal recorded for it (a host has one table, whichever incident changed it last)."""
        mine = self.store.db.execute("SELECT * FROM hosts WHERE incident_id=? ORDER BY host", (incident_id,))
        rows = {r["host"]: cast(HostRow, dict(r)) for r in mine}
        newest = self.store.db.execute("SELECT host, fingerprint, fingerprint_at, fingerprint_stage FROM hosts "
                                 "WHERE fingerprint IS NOT NULL ORDER BY fingerprint_at")
        for r in newest:
            if r["host"] in rows and (rows[r["host"]]["fingerprint_at"] or "") <= r["fingerprint_at"]:
                row = rows[r["host"]]
                row["fingerprint"], row["fingerprint_at"] = r["fingerprint"], r["fingerprint_at"]
                row["fingerprint_stage"] = r["fingerprint_stage"]
        return rows
