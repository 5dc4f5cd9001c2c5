"""The journal's file: the schema by numbered migrations (``PRAGMA user_version``), where it lives, and
the connection every repository shares (open, create, refuse a file that is not irm's, migrate, one
write transaction at a time).

Every write is its own committed transaction (WAL, synchronous=FULL), so a crash or kill never loses
what was already journaled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from orchestrator.core.errors import JournalError, UserError
from orchestrator.core.events import EventKind, detail_json

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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def machine_id() -> str:
    """Where a process runs, for telling whether a recorded pid can be checked from here: the host name,
    the boot (a reboot reuses pids) and the PID namespace (two containers can share a host name)."""
    def read(path: str, link: bool = False) -> str:
        try:
            return os.readlink(path) if link else Path(path).read_text().strip()
        except OSError:
            return ""
    return f"{socket.gethostname()}|{read('/proc/sys/kernel/random/boot_id')}|{read('/proc/self/ns/pid', True)}"



def event_row(db: sqlite3.Connection, incident_id: int | None, at: str, kind: EventKind, area: str | None,
              operator: str, detail: dict[str, Any]) -> None:
    """One event, its detail validated against its kind's model (``events.DETAILS``), in the caller's
    transaction (a change and the event that tells it are written together or not at all)."""
    db.execute("INSERT INTO events(incident_id, time, kind, area, operator, detail) VALUES (?,?,?,?,?,?)",
               (incident_id, at, kind, area, operator, detail_json(kind, detail)))


class Store:
    """The journal's SQLite file and its one connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
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
        self._opened()

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
    def reader(cls, path: str | Path) -> Self:
        """An existing journal opened read-only: no migration, no write lock, nothing changed (for
        views and for tests that read while irm runs). It must already be at this irm's schema."""
        self = cls.__new__(cls)
        self.path = Path(path)
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
        self._opened()
        return self

    def _opened(self) -> None:
        """Called once the connection is ready (the journal attaches its repositories)."""

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
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
            with self.tx() as db:
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



class Repository:
    """One group of the journal's tables, over the journal's one connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
