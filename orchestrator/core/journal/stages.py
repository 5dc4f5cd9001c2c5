"""The stages every phase runs: their rows, their hosts' results, the postures they set, their job events."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

from orchestrator.core.events import EventKind
from orchestrator.core.journal.rows import HostResult, Stage
from orchestrator.core.journal.store import Repository, event_row, now


class Stages(Repository):
    """Stages, host results and postures."""

    def start(self, incident_id: int, phase: str, area: str, name: str, target: str, check_mode: bool,
                    operator: str, **detail: Any) -> int:
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO stages(incident_id, phase, area, name, target, state, check_mode, operator, started_at,"
                " detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (incident_id, phase, area, name, target, "running", int(check_mode), operator, now(),
                 json.dumps(detail, default=str)),
            )
            stage_id = int(cur.lastrowid or 0)
            event_row(db, incident_id, now(), EventKind.STAGE_STARTED, area, operator,
                       {"stage_id": stage_id, "phase": phase, "name": name, "target": target,
                        "dry_run": check_mode})
            return stage_id

    def end(self, stage_id: int, state: str, *, postures: dict[str, str] | None = None,
                  fingerprints: dict[str, str] | None = None, **detail: Any) -> None:
        """A stage's end, the postures it set and what each of its hosts now enforces: one transaction,
        so a kill never leaves a stage done without its postures, or postures without their stage."""
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM stages WHERE id=?", (stage_id,)).fetchone()
            at = now()
            for scope, posture in (postures or {}).items():
                db.execute("INSERT INTO postures(incident_id, scope, posture, updated_at) VALUES (?,?,?,?) "
                           "ON CONFLICT(incident_id, scope) DO UPDATE SET posture=excluded.posture, "
                           "updated_at=excluded.updated_at", (row["incident_id"], scope, posture, at))
            for host, fp in (fingerprints or {}).items():
                db.execute("INSERT INTO hosts(incident_id, host, fingerprint, fingerprint_at, fingerprint_stage) "
                           "VALUES (?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET "
                           "fingerprint=excluded.fingerprint, fingerprint_at=excluded.fingerprint_at, "
                           "fingerprint_stage=excluded.fingerprint_stage",
                           (row["incident_id"], host, fp, at, row["name"]))
            merged = {**json.loads(row["detail"]), **detail}
            db.execute("UPDATE stages SET state=?, ended_at=?, detail=? WHERE id=?",
                       (state, at, json.dumps(merged, default=str), stage_id))
            event_row(db, row["incident_id"], at, EventKind.STAGE_ENDED, row["area"], row["operator"],
                       {"stage_id": stage_id, "phase": row["phase"], "name": row["name"], "state": state,
                        "dry_run": bool(row["check_mode"])})

    def update(self, stage_id: int, **detail: Any) -> None:
        """More detail on a running stage (when its change took effect, what its soak has seen so far)."""
        with self.store.tx() as db:
            row = db.execute("SELECT detail FROM stages WHERE id=?", (stage_id,)).fetchone()
            db.execute("UPDATE stages SET detail=? WHERE id=?",
                       (json.dumps({**json.loads(row["detail"]), **detail}, default=str), stage_id))

    def interrupt_stale(self, incident_id: int, area: str, phases: tuple[str, ...], operator: str) -> list[str]:
        """Rows left ``running`` by a killed run: called under the area lock, when no live run can own them."""
        marks = ",".join("?" * len(phases))
        with self.store.tx() as db:
            rows = db.execute(f"SELECT id, name FROM stages WHERE incident_id=? AND area=? AND state='running' "
                              f"AND phase IN ({marks})", (incident_id, area, *phases)).fetchall()
            at = now()
            for row in rows:
                db.execute("UPDATE stages SET state='interrupted', ended_at=? WHERE id=?", (at, row["id"]))
                event_row(db, incident_id, at, EventKind.STAGE_INTERRUPTED, area, operator,
                           {"stage_id": row["id"], "name": row["name"]})
        return [str(r["name"]) for r in rows]

    def keep_job_events(self, stage_ids: list[int], events: list[dict[str, Any]]) -> Path | None:
        """A stage's play's job events (already redacted: ``runner.job_event``), kept beside the journal as
        evidence for the report and forensics, one JSON line each, in a 0600 file of a 0700 directory
        (``<journal>-events/stage-<first row>-<random>.jsonl``); each row's detail names the file. None
        when there is nothing to keep or it cannot be written safely: a directory of that name that is a
        link, someone else's or writable by others is not used (the journal's rows stand either way)."""
        if not events or not stage_ids:
            return None
        folder = self.store.path.with_name(f"{self.store.path.stem}-events")
        name = f"stage-{min(stage_ids)}-{os.urandom(4).hex()}.jsonl"
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                st = os.fstat(dfd)
                if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                    return None
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=dfd)
            finally:
                os.close(dfd)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(e, default=str) + "\n" for e in events)
        except OSError:
            return None
        target = folder / name
        for stage_id in stage_ids:
            self.update(stage_id, job_events=str(target))
        return target

    def record_hosts(self, stage_id: int, results: list[dict[str, Any]]) -> None:
        with self.store.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO host_results(stage_id, host, status, ok, changed, failed, unreachable,"
                " failures) VALUES (:stage_id, :host, :status, :ok, :changed, :failed, :unreachable, :failures)",
                [{**r, "stage_id": stage_id, "failures": json.dumps(r.get("failures", []))} for r in results],
            )

    def of(self, incident_id: int, area: str | None = None) -> list[Stage]:
        sql = "SELECT * FROM stages WHERE incident_id=?" + (" AND area=?" if area else "") + " ORDER BY id"
        args: tuple[Any, ...] = (incident_id, area) if area else (incident_id,)
        return [Stage(id=r["id"], incident_id=r["incident_id"], phase=r["phase"], area=r["area"], name=r["name"],
                      target=r["target"], state=r["state"], check_mode=bool(r["check_mode"]), operator=r["operator"],
                      started_at=r["started_at"], ended_at=r["ended_at"], detail=json.loads(r["detail"]))
                for r in self.store.db.execute(sql, args)]

    def hosts(self, stage_id: int) -> list[HostResult]:
        rows = self.store.db.execute("SELECT * FROM host_results WHERE stage_id=? ORDER BY host", (stage_id,))
        return [cast(HostResult, {**dict(r), "failures": json.loads(r["failures"])}) for r in rows]

    def postures(self, incident_id: int) -> dict[str, str]:
        rows = self.store.db.execute("SELECT scope, posture FROM postures WHERE incident_id=?", (incident_id,))
        return {r["scope"]: r["posture"] for r in rows}
