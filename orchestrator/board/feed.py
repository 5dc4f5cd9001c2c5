"""The live feed: what a running irm command's event stream says, for the board in another process.

The journal is written when a stage starts and ends; what happens in between (each host's result as its
play reports it, the task under way, the sub-area loop's detections, the notices) lives only in the
run's event stream (``core.stream``). ``Feed`` is one more listener on that stream: it appends each event,
as one JSON line with the host names, statuses and counts only (never a fact, an argument or a failure's
text: those stay in the journal), to ``<journal>-live/run-<pid>-<random>.jsonl`` (a 0700 directory, a
0600 file, appended with O_APPEND so every line lands whole). The board tails these files; it reads the
journal for everything else. A run removes its feed when it ends; the feed of a run that was killed is
ignored once its process is gone and removed by the next run's ``Feed``.

A listener never slows a stage: a write that fails (a full disk, a feed past ``LIMIT``) stops the feed
and the stage goes on; the board then shows the journal's view only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core import stream
from orchestrator.core.journal import proc_start

LIMIT = 32 * 1024 * 1024  # a feed longer than this stops growing (the journal still holds every stage)
_NAME = re.compile(r"^run-(\d+)-([0-9a-f]{8})\.jsonl$")


def folder(journal: Path) -> Path:
    return journal.with_name(f"{journal.stem}-live")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def encode(event: stream.Event) -> dict[str, Any] | None:
    """The feed's line for ``event``: names, states and counts only."""
    if isinstance(event, stream.StageStarted):
        return {"kind": "stage_started", "label": event.label, "targets": list(event.targets),
                "summary": event.summary}
    if isinstance(event, stream.StageEnded):
        return {"kind": "stage_ended", "label": event.label, "ok": event.ok, "targets": list(event.targets)}
    if isinstance(event, stream.TaskStarted):
        return {"kind": "task", "play": event.play, "task": event.task}
    if isinstance(event, stream.HostReported):
        r = event.result
        return {"kind": "host", "host": r.host, "status": r.status, "ok": r.ok, "changed": r.changed,
                "failed": r.failed, "unreachable": r.unreachable}
    if isinstance(event, stream.HostStateChanged):
        return {"kind": "host_state", "host": event.host, "state": event.state}
    if isinstance(event, stream.Detections):
        return {"kind": "detections", "by_segment": dict(event.by_segment)}
    if isinstance(event, stream.Notice):
        return {"kind": "notice", "text": event.text[:500]}
    if isinstance(event, stream.DecisionNeeded):
        return {"kind": "decision", "incident": event.incident, "event": event.event, "areas": list(event.areas),
                "next_decision": event.next_decision}
    if isinstance(event, stream.NotificationSent):
        return {"kind": "notification", "channel": event.channel, "ok": event.ok, "event": event.event}
    return None


class Feed:
    """The feed of one run (a listener of its event stream). Nothing is written until the run publishes
    its first event (a command refused before it acts leaves nothing behind); ``close`` removes the feed,
    and the folder when no other run's feed is in it."""

    def __init__(self, journal: Path, command: str) -> None:
        self.dir = folder(journal)
        self.command = command
        self.path: Path | None = None
        self.size = 0
        self.fd = -1
        self.failed = False  # the feed could not be written (or grew past LIMIT): the run goes on without it

    def _open(self) -> None:
        self.failed = True  # unless it opens below
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
            dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                st = os.fstat(dfd)
                if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                    return  # someone else's or open to others: no feed (the journal still tells everything)
                _sweep(dfd)
                name = f"run-{os.getpid()}-{os.urandom(4).hex()}.jsonl"
                self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            finally:
                os.close(dfd)
        except OSError:
            return
        self.failed = False
        self.path = self.dir / name
        self._write({"kind": "run", "command": self.command, "pid": os.getpid(), "start": proc_start(os.getpid())})

    def _write(self, line: dict[str, Any]) -> None:
        if self.fd < 0:
            if self.failed:
                return
            self._open()
            if self.fd < 0:
                return
        data = (json.dumps({"t": _now(), **line}, default=str) + "\n").encode()
        if self.size + len(data) > LIMIT:
            self._stop()
            return
        try:
            os.write(self.fd, data)
            self.size += len(data)
        except OSError:
            self._stop()

    def _stop(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1
        self.failed = True

    def __call__(self, event: stream.Event) -> None:
        line = encode(event)
        if line is not None:
            self._write(line)

    def close(self) -> None:
        self._stop()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                self.dir.rmdir()  # only when empty: another run's feed keeps it
            self.path = None

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def attached(events: stream.EventStream, journal: Path, command: str) -> Iterator[Feed]:
    """A feed for this run, subscribed to its stream while the block runs, then removed."""
    feed = Feed(journal, command)
    unsubscribe = events.subscribe(feed)
    try:
        yield feed
    finally:
        unsubscribe()
        feed.close()


def _alive(pid: int, start: str | None) -> bool:
    now = proc_start(pid)
    return now is not None and (start is None or now == start)


def _sweep(dfd: int) -> None:
    """Remove the feeds of runs whose process is gone (killed runs)."""
    for name in os.listdir(dfd):
        m = _NAME.match(name)
        if m and proc_start(int(m.group(1))) is None:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dfd)


@dataclass
class RunView:
    """What the board knows of one live run, from its feed."""

    command: str = ""
    pid: int = 0
    start: str | None = None
    stage: str = ""  # the stage under way ("" between stages)
    summary: str = ""
    targets: list[str] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)  # host -> its status in the stage under way
    host_states: dict[str, str] = field(default_factory=dict)  # remediation: host -> state
    task: str = ""
    notices: list[dict[str, str]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)  # {t, by_segment}
    ended: list[dict[str, Any]] = field(default_factory=list)  # stages ended in this run: {t, label, ok}

    def apply(self, line: dict[str, Any]) -> None:
        kind = line.get("kind")
        if kind == "run":
            self.command, self.pid, self.start = str(line.get("command", "")), int(line.get("pid", 0)), line.get(
                "start")
        elif kind == "stage_started":
            self.stage, self.summary = str(line.get("label", "")), str(line.get("summary", ""))
            self.targets = [str(t) for t in line.get("targets") or []]
            self.hosts = dict.fromkeys(self.targets, "pending")
            self.task = ""
        elif kind == "stage_ended":
            ended = {"t": line.get("t"), "label": line.get("label"), "ok": bool(line.get("ok"))}
            self.ended = [*self.ended, ended][-50:]
            self.stage, self.task = "", ""
        elif kind == "task":
            self.task = str(line.get("task", ""))
        elif kind == "host" and line.get("host"):
            self.hosts[str(line["host"])] = str(line.get("status", ""))
        elif kind == "host_state" and line.get("host"):
            self.host_states[str(line["host"])] = str(line.get("state", ""))
        elif kind == "detections":
            sample = {"t": line.get("t"), "by_segment": line.get("by_segment") or {}}
            self.detections = [*self.detections, sample][-200:]
        elif kind == "notice":
            self.notices = [*self.notices, {"t": str(line.get("t", "")), "text": str(line.get("text", ""))}][-20:]


class Tail:
    """The live runs' feeds, read incrementally (only the bytes added since the last read)."""

    def __init__(self, journal: Path) -> None:
        self.dir = folder(journal)
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        self.runs: dict[str, RunView] = {}

    def changed(self) -> bool:
        """Whether any feed grew, appeared or went away since the last ``read`` (cheap: one stat each)."""
        try:
            names = {n: os.stat(self.dir / n, follow_symlinks=False).st_size
                     for n in os.listdir(self.dir) if _NAME.match(n)}
        except OSError:
            names = {}
        return names.keys() != self.offsets.keys() or any(self.offsets[n] != s for n, s in names.items())

    def read(self) -> dict[str, RunView]:
        """Every live run's view (a run whose process is gone is left out)."""
        try:
            names = [n for n in os.listdir(self.dir) if _NAME.match(n)]
        except OSError:
            names = []
        for gone in set(self.offsets) - set(names):
            self.offsets.pop(gone, None)
            self.partial.pop(gone, None)
            self.runs.pop(gone, None)
        for name in names:
            try:
                fd = os.open(self.dir / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    continue
                start = self.offsets.get(name, 0)
                if st.st_size < start:  # replaced: read it anew
                    start, self.runs[name], self.partial[name] = 0, RunView(), b""
                data = os.pread(fd, min(st.st_size - start, LIMIT), start)
            finally:
                os.close(fd)
            self.offsets[name] = start + len(data)
            buf = self.partial.get(name, b"") + data
            *lines, rest = buf.split(b"\n")
            self.partial[name] = rest
            view = self.runs.setdefault(name, RunView())
            for raw in lines:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict):
                    view.apply(line)
        return {n: v for n, v in self.runs.items() if v.pid and _alive(v.pid, v.start)}
