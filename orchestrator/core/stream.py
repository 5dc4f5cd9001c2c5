"""One typed stream of domain events: what the phases tell whoever listens while they run.

The phases and the runner publish; the live views, the crisis-cell notifier and any later listener (a
web board, an automatic watcher) subscribe. A library caller of a phase gets the same events as the CLI:
it subscribes a callable to the phase's ``events``. The journal is not a listener to these: it is the
write-ahead record a stage writes before it changes anything (a stage whose row cannot be written does
not run), so it is written in the stage's own flow; the events say what happened to people and tools.

A listener never slows or breaks a stage: events are delivered one at a time, in order, and a listener
that raises is dropped and named in ``faults`` (the phase goes on; the CLI prints the fault at the end).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.core.runner import HostResult


@dataclass(frozen=True)
class TaskStarted:
    """A play started a task (the runner's ``playbook_on_task_start``)."""

    play: str
    task: str


@dataclass(frozen=True)
class HostReported:
    """A host's result so far in the running play (its counters and facts), after ``event``."""

    result: HostResult
    event: str  # the runner's event: runner_on_ok, runner_on_failed, ...


@dataclass(frozen=True)
class StageStarted:
    """A stage (containment, recovery step, remediation method or verification) started on ``targets``."""

    label: str
    targets: tuple[str, ...]
    summary: str = ""


@dataclass(frozen=True)
class StageEnded:
    label: str
    ok: bool
    targets: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True)
class HostStateChanged:
    """A host's state in a phase that follows hosts one by one (remediation: pending, verified, ...)."""

    host: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Detections:
    """Detections per sub-area in the last sample of the sub-area loop or a recovery soak."""

    by_segment: Mapping[str, int]


@dataclass(frozen=True)
class Notice:
    """Something the operator should read now (a wait, a retry, a resumed stage, a halt)."""

    text: str


@dataclass(frozen=True)
class DecisionNeeded:
    """A phase reached an outcome the crisis cell must hear of, and the decision it now needs from them."""

    incident: int
    event: str  # what happened: "incident opened", "containment done, the spread has stopped", ...
    areas: tuple[str, ...]
    done: tuple[str, ...]  # what was done, one line each
    next_decision: str
    operator: str


@dataclass(frozen=True)
class NotificationSent:
    """The crisis-cell notifier's outcome on one channel (journaled by the notifier either way)."""

    channel: str
    ok: bool
    recipients: tuple[str, ...]
    event: str
    error: str = ""


Event = (TaskStarted | HostReported | StageStarted | StageEnded | HostStateChanged | Detections | Notice
         | DecisionNeeded | NotificationSent)
Listener = Callable[[Event], None]


@dataclass
class EventStream:
    """The stream one run publishes to. ``publish`` may be called from several threads (the runner's
    event thread, the parts of a routed play): one event is delivered at a time."""

    listeners: list[Listener] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # listeners dropped because they raised, and why
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns the call that removes it."""
        with self._lock:
            self.listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self.listeners:
                    self.listeners.remove(listener)
        return unsubscribe

    def say(self, text: str) -> None:
        """Publish a ``Notice`` for the operator."""
        self.publish(Notice(text))

    def publish(self, event: Event) -> None:
        with self._lock:
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception as exc:
                    self.listeners.remove(listener)
                    self.faults.append(f"{_name(listener)} stopped listening after {type(event).__name__}: "
                                       f"{type(exc).__name__}: {exc}")


def once_per_task(stream: EventStream) -> EventStream:
    """A stream that forwards to ``stream``, each (play, task) once: the parts of one play routed to
    several execution nodes run the same tasks."""
    seen: set[tuple[str, str]] = set()
    out = EventStream()

    def forward(event: Event) -> None:
        if isinstance(event, TaskStarted):
            if (event.play, event.task) in seen:
                return
            seen.add((event.play, event.task))
        stream.publish(event)
    out.subscribe(forward)
    return out


def _name(listener: Listener) -> str:
    owner = getattr(listener, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(listener, "__qualname__", repr(listener))
