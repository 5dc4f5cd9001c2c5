"""Runs and locks: one running action per area, tokens for a run's changes."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from orchestrator.core.errors import UserError
from orchestrator.core.events import EventKind, detail_json
from orchestrator.core.journal.rows import LockRow
from orchestrator.core.journal.store import Repository, Store, machine_id, now

BOUNDARIES_LOCK = "*boundaries"  # the journal-wide lock for changes to shared boundaries (edge, core, gateways)


class Locks(Repository):
    """The runs and locks tables."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._held: set[str] = set()  # the locks this object took (assert_holding checks them)

    def start_run(self, incident_id: int | None, command: str, area: str | None, operator: str) -> str:
        """A token for this process's changes: its dead-man timers carry it, so another run never
        confirms them, and a later run may replace them only once this process is known dead."""
        token = f"run-{uuid.uuid4().hex[:12]}"
        with self.store.tx() as db:
            db.execute("INSERT INTO runs(token, incident_id, command, area, pid, pid_start, hostname, operator, "
                       "started_at, machine) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (token, incident_id, command, area, os.getpid(), proc_start(os.getpid()),
                        socket.gethostname(), operator, now(), machine_id()))
        return token

    def end_run(self, token: str) -> None:
        with self.store.tx() as db:
            db.execute("UPDATE runs SET ended_at=? WHERE token=?", (now(), token))

    def dead_tokens(self) -> list[str]:
        """Tokens of runs on this machine that never ended and whose process is gone (killed, crashed)."""
        rows = self.store.db.execute("SELECT token, pid, pid_start, hostname, machine FROM runs WHERE ended_at IS NULL")
        return [r["token"] for r in rows if _here(r) and not _same_process(int(r["pid"]), r["pid_start"])]

    def acquire(self, area: str, incident_id: int | None, operator: str, token: str = "",
                     wait: float = 0.0) -> None:
        """One running action per area (or, for BOUNDARIES_LOCK, per journal). A lock whose process is
        gone from this machine (crash, kill) is taken over and journaled; a lock held by a live process,
        or by any process on another machine, is never taken over: ``irm unlock`` does that, journaled.
        With ``wait``, a held lock is waited for up to that many seconds."""
        deadline = time.monotonic() + wait
        while True:
            holder = self._try(area, incident_id, operator, token)
            if holder is None:
                return
            if time.monotonic() >= deadline:
                where = "" if _here(holder) else f" on {holder['hostname']}"
                what = "the shared boundaries are" if area == BOUNDARIES_LOCK else f"area '{area}' is"
                raise UserError(f"{what} locked by a running irm (pid {holder['pid']}{where}, operator "
                                f"{holder['operator']}, since {holder['since'][:19]}): wait for it, or if that "
                                f"process is gone for good, 'irm unlock {area} --reason TEXT'")
            time.sleep(0.25)

    def _try(self, area: str, incident_id: int | None, operator: str, token: str) -> LockRow | None:
        me = (os.getpid(), socket.gethostname())
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
            if row is not None:
                mine = int(row["pid"]) == me[0] and _here(row)
                alive = not _here(row) or _same_process(int(row["pid"]), row["pid_start"])
                if alive and not mine:
                    return cast(LockRow, dict(row))
                if not mine:
                    db.execute("INSERT INTO events(incident_id, time, kind, area, operator, detail) "
                               "VALUES ((SELECT id FROM incidents WHERE id=?),?,?,?,?,?)",
                               (incident_id, now(), EventKind.LOCK_TAKEN_OVER, area, operator,
                                detail_json(EventKind.LOCK_TAKEN_OVER,
                                            {"pid": row["pid"], "token": row["token"], "since": row["since"]})))
                db.execute("DELETE FROM locks WHERE area=?", (area,))
            db.execute("INSERT INTO locks(area, incident_id, pid, hostname, operator, since, token, pid_start, "
                       "machine) VALUES (?,?,?,?,?,?,?,?,?)",
                       (area, incident_id, me[0], me[1], operator, now(), token, proc_start(me[0]), machine_id()))
        self._held.add(area)
        return None

    def assert_holding(self) -> None:
        """Every lock this journal object took is still this process's (see ``assert_held``)."""
        for area in sorted(self._held):
            self.assert_held(area)

    def assert_held(self, area: str) -> None:
        """Right before changing a device: this process still holds ``area``'s lock (nobody unlocked it
        and nobody took it over). UserError naming who holds it now, nothing changed."""
        row = self.store.db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
        if row is None or int(row["pid"]) != os.getpid() or not _here(row):
            who = "nobody" if row is None else f"pid {row['pid']} on {row['hostname']} ({row['operator']})"
            raise UserError(f"the lock '{area}' this run held is gone (now held by {who}): nothing more is changed; "
                            "check the devices with 'irm status --verify'")

    def release(self, area: str) -> None:
        with self.store.tx() as db:
            for row in db.execute("SELECT * FROM locks WHERE area=? AND pid=?", (area, os.getpid())).fetchall():
                if _here(row):
                    db.execute("DELETE FROM locks WHERE area=?", (area,))
        self._held.discard(area)

    @contextmanager
    def hold(self, area: str, incident_id: int | None, operator: str, token: str = "",
             wait: float = 0.0) -> Iterator[None]:
        row = self.store.db.execute("SELECT * FROM locks WHERE area=? AND pid=?", (area, os.getpid())).fetchone()
        held = row is not None and _here(row)
        if held:  # re-entrant within one process
            yield
            return
        self.acquire(area, incident_id, operator, token, wait)
        try:
            yield
        finally:
            self.release(area)

    def held(self) -> list[LockRow]:
        return [cast(LockRow, dict(r)) for r in self.store.db.execute("SELECT * FROM locks ORDER BY area")]

    def unlock(self, area: str, reason: str, operator: str) -> LockRow:
        with self.store.tx() as db:
            row = db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
            if row is None:
                raise UserError(f"'{area}' is not locked in journal {self.store.path}")
            if _here(row) and _same_process(int(row["pid"]), row["pid_start"]):
                raise UserError(f"'{area}' is held by a live irm on this machine (pid {row['pid']}, {row['operator']}):"
                                " stop that process first; unlock is for a holder gone for good")
            db.execute("DELETE FROM locks WHERE area=?", (area,))
            db.execute("INSERT INTO events(incident_id, time, kind, area, operator, detail) "
                       "VALUES ((SELECT id FROM incidents WHERE id=?),?,?,?,?,?)",
                       (row["incident_id"], now(), EventKind.LOCK_RELEASED_BY_OPERATOR, None if area == BOUNDARIES_LOCK
                        else area, operator,
                        detail_json(EventKind.LOCK_RELEASED_BY_OPERATOR,
                                    {"lock": area, "pid": row["pid"], "hostname": row["hostname"],
                                     "held_by": row["operator"], "reason": reason})))
            return cast(LockRow, dict(row))


def _here(row: Any) -> bool:
    """The row's process runs where this one does (rows from before machine ids: by host name)."""
    keys = row.keys()
    machine = row["machine"] if "machine" in keys else None
    return bool(machine == machine_id() if machine else row["hostname"] == socket.gethostname())

def proc_start(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid, its identity."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def _same_process(pid: int, start: str | None) -> bool:
    """Whether ``pid`` is still the process that was recorded (a reused pid after a reboot is not)."""
    now_start = proc_start(pid)
    if now_start is None:
        return False
    return start is None or now_start == start
