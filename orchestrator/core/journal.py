"""The journal: one embedded SQLite file (WAL, synchronous=FULL) holding incidents, stages, per-host
results, postures, remediation plans and per-host remediation states, the timeline of events and the
area locks.

Every write is its own committed transaction, so a crash or kill never loses what was already
journaled. The schema evolves by numbered migrations (``PRAGMA user_version``); rows are never
rewritten except a stage's end and state, a posture's current value and lock ownership.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.errors import JournalError, UserError
from orchestrator.core.events import EventKind, detail_json
from orchestrator.core.incident import IncidentSpec

# One fixed place per machine, whatever the working directory: two operators on one machine share one
# journal, hence one set of locks. --journal / IRM_JOURNAL override it.
DEFAULT_DIR = Path(os.environ.get("IRM_STATE_DIR", "/var/lib/irm"))
DEFAULT_PATH = str(DEFAULT_DIR / "journal.db")
APPLICATION_ID = 0x49524D31  # "IRM1" in the SQLite header: an irm journal, not any SQLite file
BOUNDARIES_LOCK = "*boundaries"  # the journal-wide lock for changes to shared boundaries (edge, core, gateways)

_MIGRATIONS = [
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY, worm TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
        opened_at TEXT NOT NULL, opened_by TEXT NOT NULL, closed_at TEXT);
    CREATE TABLE stages (
        id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents(id),
        phase TEXT NOT NULL, area TEXT NOT NULL, name TEXT NOT NULL, target TEXT NOT NULL,
        state TEXT NOT NULL, check_mode INTEGER NOT NULL, operator TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT, detail TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE host_results (
        stage_id INTEGER NOT NULL REFERENCES stages(id), host TEXT NOT NULL, status TEXT NOT NULL,
        ok INTEGER NOT NULL, changed INTEGER NOT NULL, failed INTEGER NOT NULL, unreachable INTEGER NOT NULL,
        failures TEXT NOT NULL, PRIMARY KEY (stage_id, host));
    CREATE TABLE postures (
        incident_id INTEGER NOT NULL REFERENCES incidents(id), scope TEXT NOT NULL, posture TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (incident_id, scope));
    CREATE TABLE events (
        id INTEGER PRIMARY KEY, incident_id INTEGER REFERENCES incidents(id), time TEXT NOT NULL,
        kind TEXT NOT NULL, area TEXT, operator TEXT, detail TEXT NOT NULL DEFAULT '{}');
    CREATE TABLE locks (
        area TEXT PRIMARY KEY, incident_id INTEGER, pid INTEGER NOT NULL, hostname TEXT NOT NULL,
        operator TEXT NOT NULL, since TEXT NOT NULL);
    CREATE INDEX events_incident ON events(incident_id, time);
    CREATE INDEX stages_incident ON stages(incident_id, area);
    """,
    """
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents(id), area TEXT NOT NULL,
        name TEXT NOT NULL, plan TEXT NOT NULL, source TEXT NOT NULL, stored_at TEXT NOT NULL,
        stored_by TEXT NOT NULL);
    CREATE TABLE remediation (
        incident_id INTEGER NOT NULL REFERENCES incidents(id), area TEXT NOT NULL, host TEXT NOT NULL,
        state TEXT NOT NULL, method TEXT, detail TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL, PRIMARY KEY (incident_id, host));
    """,
    """
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents(id), approved_by TEXT NOT NULL,
        role TEXT NOT NULL, reason TEXT NOT NULL, approved_at TEXT NOT NULL, recorded_by TEXT NOT NULL);
    """,
    """
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents(id), text TEXT NOT NULL,
        kind TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL);
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents(id), text TEXT NOT NULL,
        owner TEXT NOT NULL, react TEXT, due TEXT, added_by TEXT NOT NULL, added_at TEXT NOT NULL);
    """,
    """
    ALTER TABLE locks ADD COLUMN token TEXT;
    ALTER TABLE locks ADD COLUMN pid_start TEXT;
    CREATE TABLE runs (
        token TEXT PRIMARY KEY, incident_id INTEGER, command TEXT NOT NULL, area TEXT, pid INTEGER NOT NULL,
        pid_start TEXT, hostname TEXT NOT NULL, operator TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT);
    CREATE TABLE hosts (
        incident_id INTEGER NOT NULL REFERENCES incidents(id), host TEXT NOT NULL, area TEXT,
        reach TEXT NOT NULL DEFAULT 'unknown', reach_at TEXT, reach_stage TEXT,
        fingerprint TEXT, fingerprint_at TEXT, fingerprint_stage TEXT,
        excluded_reason TEXT, excluded_by TEXT, excluded_at TEXT, PRIMARY KEY (incident_id, host));
    """,
    """
    ALTER TABLE approvals ADD COLUMN area TEXT;
    ALTER TABLE approvals ADD COLUMN statement TEXT;
    ALTER TABLE approvals ADD COLUMN signature TEXT;
    ALTER TABLE approvals ADD COLUMN key_fingerprint TEXT;
    """,
    """
    ALTER TABLE locks ADD COLUMN machine TEXT;
    ALTER TABLE runs ADD COLUMN machine TEXT;
    """,
    """
    CREATE TABLE policies (fingerprint TEXT PRIMARY KEY, policy TEXT NOT NULL, first_at TEXT NOT NULL);
    """,
]


def machine_id() -> str:
    """Where a process runs, for telling whether a recorded pid can be checked from here: the host name,
    the boot (a reboot reuses pids) and the PID namespace (two containers can share a host name)."""
    def read(path: str, link: bool = False) -> str:
        try:
            return os.readlink(path) if link else Path(path).read_text().strip()
        except OSError:
            return ""
    return f"{socket.gethostname()}|{read('/proc/sys/kernel/random/boot_id')}|{read('/proc/self/ns/pid', True)}"


def _here(row: Any) -> bool:
    """The row's process runs where this one does (rows from before machine ids: by host name)."""
    keys = row.keys()
    machine = row["machine"] if "machine" in keys else None
    return bool(machine == machine_id() if machine else row["hostname"] == socket.gethostname())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_operator(given: str | None = None) -> str:
    """Who runs this: ``--operator`` / IRM_OPERATOR, else the login name; one plain line of text."""
    from orchestrator.core.safetext import check_text

    name = given or os.environ.get("IRM_OPERATOR") or os.environ.get("SUDO_USER") or os.environ.get("USER") or "root"
    return check_text(name, "--operator (or IRM_OPERATOR)", limit=100)


@dataclass(frozen=True)
class Incident:
    id: int
    spec: IncidentSpec
    status: str
    opened_at: str
    opened_by: str


@dataclass(frozen=True)
class Stage:
    id: int
    incident_id: int
    phase: str
    area: str
    name: str
    target: str
    state: str
    check_mode: bool
    operator: str
    started_at: str
    ended_at: str | None
    detail: dict[str, Any]


def _event_row(db: sqlite3.Connection, incident_id: int | None, at: str, kind: EventKind, area: str | None,
               operator: str, detail: dict[str, Any]) -> None:
    """One event, its detail validated against its kind's model (``events.DETAILS``)."""
    db.execute("INSERT INTO events(incident_id, time, kind, area, operator, detail) VALUES (?,?,?,?,?,?)",
               (incident_id, at, kind, area, operator, detail_json(kind, detail)))


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._held: set[str] = set()  # the locks this object took (assert_holding checks them)
        if self.path == Path(DEFAULT_PATH) and not self.path.parent.exists():
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise JournalError(f"journal {self.path}: cannot create {self.path.parent} ({exc.strerror}); "
                                "pass --journal or set IRM_JOURNAL") from None
        if self.path.parent and not self.path.parent.exists():
            raise UserError(f"journal {self.path}: directory {self.path.parent} does not exist")
        fresh = not self.path.exists() and not self.path.is_symlink()
        if fresh:
            self._create()
        self._refuse_unless_ours()  # before anything is written or any mode changed
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: cannot be opened ({exc})") from None
        if self.path.stat().st_mode & 0o077:
            try:  # 0600 on every open: the journal holds who did what during a crisis
                os.chmod(self.path, 0o600)
            except PermissionError:
                raise JournalError(f"journal {self.path} is readable by others and not ours to fix: chmod 600 it") \
                    from None
        self.db.row_factory = sqlite3.Row
        try:
            self._check_ours()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise JournalError(f"journal {self.path}: {self._why(exc)}") from None
        except BaseException:
            self.db.close()
            raise

    def _create(self) -> None:
        """A new journal appears whole: built (0600, irm's schema) under a private name in the same
        directory, then linked to its path, so no process ever finds the path as an empty file. Several
        processes creating it at once: the first link wins, the others open that one."""
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.new")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.close(fd)
            self.db = sqlite3.connect(tmp, timeout=30, isolation_level=None)
            try:
                self.db.execute("PRAGMA journal_mode=DELETE")  # one file to link (WAL is set on open)
                self._migrate()
            finally:
                self.db.close()
            with contextlib.suppress(FileExistsError):  # another process created it first: that one is it
                os.link(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise JournalError(f"journal {self.path}: cannot be created ({why})") from None
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
                leftover.unlink(missing_ok=True)

    def _refuse_unless_ours(self) -> None:
        """An existing path is opened for writing only when it is an irm journal: a regular file (not a
        symbolic link, a device, a FIFO or a directory), starting with SQLite's header, that is irm's
        (read-only first). Nothing is written and no mode changed on any other file."""
        try:  # no link followed, no FIFO waited on: the checks apply to what is opened
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise JournalError(f"journal {self.path} is a symbolic link: give the journal's own path") from None
            raise JournalError(f"journal {self.path}: cannot be read ({exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JournalError(f"journal {self.path} is not a file")
            header = os.read(fd, 16)
        except OSError as exc:
            raise JournalError(f"journal {self.path}: cannot be read ({exc.strerror})") from None
        finally:
            os.close(fd)
        if header != b"SQLite format 3\x00":
            what = "an empty file" if not header else "not a SQLite file"
            raise JournalError(f"journal {self.path}: {what}, so not an irm journal, or damaged; nothing changed: pass "
                               "another --journal (a path that does not exist yet starts a new journal)")
        try:
            # immutable: no lock, no -wal or -shm file created beside a file that may not be ours
            probe = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, timeout=30,
                                    isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: cannot be opened ({exc})") from None
        try:
            self.db = probe
            self._check_ours()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path}: {self._why(exc)}") from None
        finally:
            probe.close()

    def _why(self, exc: sqlite3.DatabaseError) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return f"not an irm journal, or damaged ({text}); pass another --journal, keep this file for analysis"
        parent = self.path.parent
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY) or not os.access(parent, os.W_OK) \
            or not os.access(self.path, os.W_OK)
        if "readonly" in text or "read-only" in text or ("unable to open" in text and read_only):
            return f"cannot be written ({text}); irm journals every action, so it needs a writable journal"
        return text

    def _check_ours(self) -> None:
        """Refuse another application's SQLite file before writing anything into it."""
        app_id = int(self.db.execute("PRAGMA application_id").fetchone()[0])
        if app_id == APPLICATION_ID:
            return
        if app_id:
            raise JournalError(f"journal {self.path}: a SQLite file of another application (application_id "
                               f"{app_id:#x}), not an irm journal")
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if (tables and not {"incidents", "events", "stages"} <= tables) or (version and not tables):
            raise JournalError(f"journal {self.path}: a SQLite file that is not an irm journal (tables: "
                               f"{', '.join(sorted(tables)) or 'none'}); pass another --journal")

    @classmethod
    def reader(cls, path: str | Path) -> Journal:
        """An existing journal opened read-only: no migration, no write lock, nothing changed (for
        views and for tests that read while irm runs). It must already be at this irm's schema."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self._held = set()
        if not self.path.is_file():
            raise UserError(f"no journal at {self.path}")
        try:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._check_ours()
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path}: {exc}") from None
        if version != len(_MIGRATIONS):
            self.db.close()
            raise JournalError(f"journal {self.path} is at schema {version}, this irm reads {len(_MIGRATIONS)}: open "
                               "it once with a command that writes (it migrates), or use the irm that wrote it")
        return self

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        """Each migration reads the schema version and applies the next step under the write lock, so
        processes opening a new journal together never apply one twice (nor lose a row to a failure)."""
        while True:
            with self._tx() as db:
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if version > len(_MIGRATIONS):
                    raise JournalError(f"journal {self.path} was written by a newer irm (schema {version})")
                if version == len(_MIGRATIONS):
                    if int(db.execute("PRAGMA application_id").fetchone()[0]) != APPLICATION_ID:
                        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    return
                for statement in filter(str.strip, _MIGRATIONS[version].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={version + 1}")

    # -- incidents -------------------------------------------------------------------------------

    def open_incident(self, spec: IncidentSpec, operator: str) -> Incident:
        at = now()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO incidents(worm, spec, status, opened_at, opened_by) VALUES (?,?,?,?,?)",
                (spec.worm, spec.model_dump_json(), "open", at, operator),
            )
            incident_id = int(cur.lastrowid or 0)
            db.execute("INSERT INTO events(incident_id, time, kind, operator, detail) VALUES (?,?,?,?,?)",
                       (incident_id, at, EventKind.INCIDENT_OPENED, operator, spec.model_dump_json()))
        return Incident(id=incident_id, spec=spec, status="open", opened_at=at, opened_by=operator)

    def close_incident(self, incident_id: int, operator: str, forced: bool, reason: str | None,
                       still_held: dict[str, str]) -> None:
        with self._tx() as db:
            db.execute("UPDATE incidents SET status='closed', closed_at=? WHERE id=?", (now(), incident_id))
            _event_row(db, incident_id, now(), EventKind.INCIDENT_CLOSED, None, operator,
                       {"forced": forced, "reason": reason, "still_held": still_held})

    def _incident(self, row: sqlite3.Row) -> Incident:
        return Incident(id=row["id"], spec=IncidentSpec.model_validate_json(row["spec"]), status=row["status"],
                        opened_at=row["opened_at"], opened_by=row["opened_by"])

    def incidents(self) -> list[Incident]:
        return [self._incident(r) for r in self.db.execute("SELECT * FROM incidents ORDER BY id")]

    def incident(self, incident_id: int) -> Incident:
        row = self.db.execute("SELECT * FROM incidents WHERE id=?", (incident_id,)).fetchone()
        if row is None:
            raise UserError(f"journal {self.path}: no incident {incident_id}")
        return self._incident(row)

    def open_incident_for(self, incident_id: int | None) -> Incident:
        """The incident an action works on: the given one (it must be open) or the only open one."""
        if incident_id is not None:
            inc = self.incident(incident_id)
            if inc.status != "open":
                raise UserError(f"incident {incident_id} is {inc.status}, not open")
            return inc
        open_ = [i for i in self.incidents() if i.status == "open"]
        if not open_:
            raise UserError(f"no open incident in journal {self.path}: record the worm first with "
                            "'irm incident open --worm NAME --vector tcp/PORT'")
        if len(open_) > 1:
            ids = ", ".join(str(i.id) for i in open_)
            raise UserError(f"several open incidents ({ids}) in journal {self.path}: choose one with --incident ID")
        return open_[0]

    # -- events, stages, host results, postures ----------------------------------------------------

    def event(self, incident_id: int | None, kind: EventKind, operator: str, area: str | None = None,
              **detail: Any) -> None:
        with self._tx() as db:
            _event_row(db, incident_id, now(), kind, area, operator, detail)

    def events(self, incident_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM events WHERE incident_id=? ORDER BY time, id", (incident_id,))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def events_of(self, kinds: tuple[EventKind, ...], since: str = "") -> list[dict[str, Any]]:
        """Events of these kinds in any incident or none (the watcher's own), at or after ``since``."""
        marks = ",".join("?" * len(kinds))
        rows = self.db.execute(f"SELECT * FROM events WHERE kind IN ({marks}) AND time>=? ORDER BY time, id",
                               (*kinds, since))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def start_stage(self, incident_id: int, phase: str, area: str, name: str, target: str, check_mode: bool,
                    operator: str, **detail: Any) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO stages(incident_id, phase, area, name, target, state, check_mode, operator, started_at,"
                " detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (incident_id, phase, area, name, target, "running", int(check_mode), operator, now(),
                 json.dumps(detail, default=str)),
            )
            stage_id = int(cur.lastrowid or 0)
            _event_row(db, incident_id, now(), EventKind.STAGE_STARTED, area, operator,
                       {"stage_id": stage_id, "phase": phase, "name": name, "target": target,
                        "dry_run": check_mode})
            return stage_id

    def end_stage(self, stage_id: int, state: str, *, postures: dict[str, str] | None = None,
                  fingerprints: dict[str, str] | None = None, **detail: Any) -> None:
        """A stage's end, the postures it set and what each of its hosts now enforces: one transaction,
        so a kill never leaves a stage done without its postures, or postures without their stage."""
        with self._tx() as db:
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
            _event_row(db, row["incident_id"], at, EventKind.STAGE_ENDED, row["area"], row["operator"],
                       {"stage_id": stage_id, "phase": row["phase"], "name": row["name"], "state": state,
                        "dry_run": bool(row["check_mode"])})

    def update_stage(self, stage_id: int, **detail: Any) -> None:
        """More detail on a running stage (when its change took effect, what its soak has seen so far)."""
        with self._tx() as db:
            row = db.execute("SELECT detail FROM stages WHERE id=?", (stage_id,)).fetchone()
            db.execute("UPDATE stages SET detail=? WHERE id=?",
                       (json.dumps({**json.loads(row["detail"]), **detail}, default=str), stage_id))

    def interrupt_stale(self, incident_id: int, area: str, phases: tuple[str, ...], operator: str) -> list[str]:
        """Rows left ``running`` by a killed run: called under the area lock, when no live run can own them."""
        marks = ",".join("?" * len(phases))
        with self._tx() as db:
            rows = db.execute(f"SELECT id, name FROM stages WHERE incident_id=? AND area=? AND state='running' "
                              f"AND phase IN ({marks})", (incident_id, area, *phases)).fetchall()
            at = now()
            for row in rows:
                db.execute("UPDATE stages SET state='interrupted', ended_at=? WHERE id=?", (at, row["id"]))
                _event_row(db, incident_id, at, EventKind.STAGE_INTERRUPTED, area, operator,
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
        folder = self.path.with_name(f"{self.path.stem}-events")
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
            self.update_stage(stage_id, job_events=str(target))
        return target

    def host_results(self, stage_id: int, results: list[dict[str, Any]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO host_results(stage_id, host, status, ok, changed, failed, unreachable,"
                " failures) VALUES (:stage_id, :host, :status, :ok, :changed, :failed, :unreachable, :failures)",
                [{**r, "stage_id": stage_id, "failures": json.dumps(r.get("failures", []))} for r in results],
            )

    def stages(self, incident_id: int, area: str | None = None) -> list[Stage]:
        sql = "SELECT * FROM stages WHERE incident_id=?" + (" AND area=?" if area else "") + " ORDER BY id"
        args: tuple[Any, ...] = (incident_id, area) if area else (incident_id,)
        return [Stage(id=r["id"], incident_id=r["incident_id"], phase=r["phase"], area=r["area"], name=r["name"],
                      target=r["target"], state=r["state"], check_mode=bool(r["check_mode"]), operator=r["operator"],
                      started_at=r["started_at"], ended_at=r["ended_at"], detail=json.loads(r["detail"]))
                for r in self.db.execute(sql, args)]

    def stage_hosts(self, stage_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM host_results WHERE stage_id=? ORDER BY host", (stage_id,))
        return [{**dict(r), "failures": json.loads(r["failures"])} for r in rows]

    def postures(self, incident_id: int) -> dict[str, str]:
        rows = self.db.execute("SELECT scope, posture FROM postures WHERE incident_id=?", (incident_id,))
        return {r["scope"]: r["posture"] for r in rows}

    # -- remediation -------------------------------------------------------------------------------

    def store_plan(self, incident_id: int, area: str, name: str, plan: dict[str, Any], source: str,
                   operator: str) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO plans(incident_id, area, name, plan, source, stored_at, stored_by) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (incident_id, area, name, json.dumps(plan, default=str), source, now(), operator))
            return int(cur.lastrowid or 0)

    def latest_plan(self, incident_id: int, area: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT plan FROM plans WHERE incident_id=? AND area=? ORDER BY id DESC LIMIT 1",
                              (incident_id, area)).fetchone()
        return dict(json.loads(row["plan"])) if row else None

    def set_remediation(self, incident_id: int, area: str, host: str, state: str, operator: str,
                        method: str | None = None, **detail: Any) -> None:
        """A host's current remediation state; every change is also an event (the history)."""
        with self._tx() as db:
            db.execute("INSERT INTO remediation(incident_id, area, host, state, method, detail, updated_at, updated_by)"
                       " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET state=excluded.state,"
                       " method=COALESCE(excluded.method, remediation.method), detail=excluded.detail,"
                       " updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                       (incident_id, area, host, state, method, json.dumps(detail, default=str), now(), operator))
            _event_row(db, incident_id, now(), EventKind.REMEDIATION_HOST, area, operator,
                       {"host": host, "state": state, "method": method, **detail})

    def remediation(self, incident_id: int, area: str | None = None) -> dict[str, dict[str, Any]]:
        sql = "SELECT * FROM remediation WHERE incident_id=?" + (" AND area=?" if area else "") + " ORDER BY host"
        args: tuple[Any, ...] = (incident_id, area) if area else (incident_id,)
        return {r["host"]: {**dict(r), "detail": json.loads(r["detail"])} for r in self.db.execute(sql, args)}

    # -- approvals ---------------------------------------------------------------------------------

    def approve(self, incident_id: int, area: str, approved_by: str, role: str, reason: str, approved_at: str,
                statement: str, signature: str, key_fingerprint: str, recorded_by: str) -> int:
        """A signed approval: the statement exactly as signed, its SSH signature and the key's fingerprint."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO approvals(incident_id, area, approved_by, role, reason, approved_at, recorded_by,"
                " statement, signature, key_fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (incident_id, area, approved_by, role, reason, approved_at, recorded_by, statement, signature,
                 key_fingerprint))
            _event_row(db, incident_id, now(), EventKind.APPROVAL, area, recorded_by,
                       {"approved_by": approved_by, "role": role, "reason": reason,
                        "key_fingerprint": key_fingerprint, "signed": True})
            return int(cur.lastrowid or 0)

    def approvals(self, incident_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM approvals WHERE incident_id=? ORDER BY id", (incident_id,))
        return [dict(r) for r in rows]

    # -- the crisis cell's notes and action items (aftermath) ------------------------------------

    def add_note(self, incident_id: int, text: str, kind: str, by: str) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO notes(incident_id, text, kind, by, at) VALUES (?,?,?,?,?)",
                             (incident_id, text, kind, by, now()))
            return int(cur.lastrowid or 0)

    def notes(self, incident_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM notes WHERE incident_id=? ORDER BY id", (incident_id,))]

    def add_action(self, incident_id: int, text: str, owner: str, react: str | None, due: str | None,
                   added_by: str) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO actions(incident_id, text, owner, react, due, added_by, added_at) "
                             "VALUES (?,?,?,?,?,?,?)", (incident_id, text, owner, react, due, added_by, now()))
            return int(cur.lastrowid or 0)

    def actions(self, incident_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM actions WHERE incident_id=? ORDER BY id",
                                                 (incident_id,))]

    # -- hosts: reachability, what each enforces, operator exclusions ----------------------------

    def set_reach(self, incident_id: int, area: str | None, hosts: list[str], reach: str, stage: str) -> None:
        if not hosts:
            return
        at = now()
        with self._tx() as db:
            db.executemany("INSERT INTO hosts(incident_id, host, area, reach, reach_at, reach_stage) "
                           "VALUES (?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET "
                           "area=COALESCE(excluded.area, hosts.area), reach=excluded.reach, "  # since when, first stage
                           "reach_at=CASE WHEN hosts.reach=excluded.reach THEN hosts.reach_at "
                           "ELSE excluded.reach_at END, "
                           "reach_stage=CASE WHEN hosts.reach=excluded.reach THEN hosts.reach_stage "
                           "ELSE excluded.reach_stage END",
                           [(incident_id, h, area, reach, at, stage) for h in hosts])
            if reach == "unreachable":
                _event_row(db, incident_id, at, EventKind.HOSTS_UNREACHABLE, area, "irm",
                           {"hosts": sorted(hosts), "stage": stage})

    def exclude(self, incident_id: int, area: str | None, host: str, reason: str, operator: str) -> None:
        at = now()
        with self._tx() as db:
            db.execute("INSERT INTO hosts(incident_id, host, area, excluded_reason, excluded_by, excluded_at) "
                       "VALUES (?,?,?,?,?,?) ON CONFLICT(incident_id, host) DO UPDATE SET "
                       "excluded_reason=excluded.excluded_reason, excluded_by=excluded.excluded_by, "
                       "excluded_at=excluded.excluded_at", (incident_id, host, area, reason, operator, at))
            _event_row(db, incident_id, at, EventKind.HOST_EXCLUDED, area, operator,
                       {"host": host, "reason": reason})

    def enforced(self) -> dict[str, str]:
        """host -> the newest fingerprint any incident of this journal recorded for it."""
        rows = self.db.execute("SELECT host, fingerprint FROM hosts WHERE fingerprint IS NOT NULL "
                               "ORDER BY fingerprint_at")
        return {r["host"]: r["fingerprint"] for r in rows}

    def known_tables(self) -> dict[str, set[str]]:
        """host -> every table this journal recorded a host enforcing or planned for it (a stage's planned
        table is live on the host when a kill lands between its confirm and the journal's write)."""
        out: dict[str, set[str]] = {}
        for r in self.db.execute("SELECT host, fingerprint FROM hosts WHERE fingerprint IS NOT NULL"):
            out.setdefault(r["host"], set()).add(r["fingerprint"])
        for r in self.db.execute("SELECT detail FROM stages WHERE check_mode=0"):
            planned = json.loads(r["detail"]).get("planned") or {}
            for host, fp in planned.items() if isinstance(planned, dict) else ():
                out.setdefault(str(host), set()).add(str(fp))
        return out

    def remember_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        """Keep each planned policy under its fingerprint, so that a later apply can tell what a device that
        cannot compute fingerprints (IOS, Windows) may hold: the rendering of one of these."""
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO policies (fingerprint, policy, first_at) VALUES (?, ?, ?)",
                                [(fp, json.dumps(p, sort_keys=True), now()) for fp, p in policies.items()])

    def policies(self, fingerprints: set[str]) -> dict[str, dict[str, Any]]:
        """The policies kept under these fingerprints (those journaled before irm kept them are missing)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.db.execute("SELECT fingerprint, policy FROM policies"):
            if r["fingerprint"] in fingerprints:
                out[r["fingerprint"]] = json.loads(r["policy"])
        return out

    def host_rows(self, incident_id: int) -> dict[str, dict[str, Any]]:
        """The incident's rows; what each host enforces is the newest fingerprint any incident of this
        journal recorded for it (a host has one table, whichever incident changed it last)."""
        rows = {r["host"]: dict(r) for r in self.db.execute("SELECT * FROM hosts WHERE incident_id=? ORDER BY host",
                                                            (incident_id,))}
        newest = self.db.execute("SELECT host, fingerprint, fingerprint_at, fingerprint_stage FROM hosts "
                                 "WHERE fingerprint IS NOT NULL ORDER BY fingerprint_at")
        for r in newest:
            if r["host"] in rows and (rows[r["host"]]["fingerprint_at"] or "") <= r["fingerprint_at"]:
                rows[r["host"]].update(fingerprint=r["fingerprint"], fingerprint_at=r["fingerprint_at"],
                                       fingerprint_stage=r["fingerprint_stage"])
        return rows

    # -- runs and locks ----------------------------------------------------------------------------

    def start_run(self, incident_id: int | None, command: str, area: str | None, operator: str) -> str:
        """A token for this process's changes: its dead-man timers carry it, so another run never
        confirms them, and a later run may replace them only once this process is known dead."""
        token = f"run-{uuid.uuid4().hex[:12]}"
        with self._tx() as db:
            db.execute("INSERT INTO runs(token, incident_id, command, area, pid, pid_start, hostname, operator, "
                       "started_at, machine) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (token, incident_id, command, area, os.getpid(), proc_start(os.getpid()),
                        socket.gethostname(), operator, now(), machine_id()))
        return token

    def end_run(self, token: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET ended_at=? WHERE token=?", (now(), token))

    def dead_tokens(self) -> list[str]:
        """Tokens of runs on this machine that never ended and whose process is gone (killed, crashed)."""
        rows = self.db.execute("SELECT token, pid, pid_start, hostname, machine FROM runs WHERE ended_at IS NULL")
        return [r["token"] for r in rows if _here(r) and not _same_process(int(r["pid"]), r["pid_start"])]

    def acquire_lock(self, area: str, incident_id: int | None, operator: str, token: str = "",
                     wait: float = 0.0) -> None:
        """One running action per area (or, for BOUNDARIES_LOCK, per journal). A lock whose process is
        gone from this machine (crash, kill) is taken over and journaled; a lock held by a live process,
        or by any process on another machine, is never taken over: ``irm unlock`` does that, journaled.
        With ``wait``, a held lock is waited for up to that many seconds."""
        deadline = time.monotonic() + wait
        while True:
            holder = self._try_lock(area, incident_id, operator, token)
            if holder is None:
                return
            if time.monotonic() >= deadline:
                where = "" if _here(holder) else f" on {holder['hostname']}"
                what = "the shared boundaries are" if area == BOUNDARIES_LOCK else f"area '{area}' is"
                raise UserError(f"{what} locked by a running irm (pid {holder['pid']}{where}, operator "
                                f"{holder['operator']}, since {holder['since'][:19]}): wait for it, or if that "
                                f"process is gone for good, 'irm unlock {area} --reason TEXT'")
            time.sleep(0.25)

    def _try_lock(self, area: str, incident_id: int | None, operator: str, token: str) -> dict[str, Any] | None:
        me = (os.getpid(), socket.gethostname())
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
            if row is not None:
                mine = int(row["pid"]) == me[0] and _here(row)
                alive = not _here(row) or _same_process(int(row["pid"]), row["pid_start"])
                if alive and not mine:
                    return dict(row)
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
        row = self.db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
        if row is None or int(row["pid"]) != os.getpid() or not _here(row):
            who = "nobody" if row is None else f"pid {row['pid']} on {row['hostname']} ({row['operator']})"
            raise UserError(f"the lock '{area}' this run held is gone (now held by {who}): nothing more is changed; "
                            "check the devices with 'irm status --verify'")

    def release_lock(self, area: str) -> None:
        with self._tx() as db:
            for row in db.execute("SELECT * FROM locks WHERE area=? AND pid=?", (area, os.getpid())).fetchall():
                if _here(row):
                    db.execute("DELETE FROM locks WHERE area=?", (area,))
        self._held.discard(area)

    @contextmanager
    def lock(self, area: str, incident_id: int | None, operator: str, token: str = "",
             wait: float = 0.0) -> Iterator[None]:
        row = self.db.execute("SELECT * FROM locks WHERE area=? AND pid=?", (area, os.getpid())).fetchone()
        held = row is not None and _here(row)
        if held:  # re-entrant within one process
            yield
            return
        self.acquire_lock(area, incident_id, operator, token, wait)
        try:
            yield
        finally:
            self.release_lock(area)

    def locks(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM locks ORDER BY area")]

    def unlock(self, area: str, reason: str, operator: str) -> dict[str, Any]:
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE area=?", (area,)).fetchone()
            if row is None:
                raise UserError(f"'{area}' is not locked in journal {self.path}")
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
            return dict(row)


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
