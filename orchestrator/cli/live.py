"""The operator's live views: each is a listener of a run's event stream (``core.stream``) that draws
the stages, the hosts done or failed and the detections per sub-area as the events arrive."""

from __future__ import annotations

import time
from typing import Self

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.core import stream
from orchestrator.core.runner import HostResult

_STYLE = {"running": "yellow", "done": "green", "failed": "bold red"}


class _LiveView:
    """A rich Live view that also ends with a newline when the output is not a terminal."""

    console: Console
    live: Live

    def __enter__(self) -> Self:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)
        if not self.console.is_terminal:
            self.console.line()


class LiveProgress(_LiveView):
    """A playbook run: current play and task, hosts ok/changed/failed/unreachable."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.play = ""
        self.task = ""
        self.hosts: dict[str, HostResult] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=8, transient=False)

    def _render(self) -> Table:
        counts = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
        for hr in self.hosts.values():
            counts[hr.status] += 1
        table = Table.grid(padding=(0, 2))
        table.add_row(Text(self.title, style="bold"), f"play: {self.play}", f"task: {self.task}")
        table.add_row(
            f"hosts {len(self.hosts)}",
            Text.assemble((f"ok {counts['ok']}", "green"), "  ", (f"changed {counts['changed']}", "yellow")),
            Text(f"failed {counts['failed']}  unreachable {counts['unreachable']}", style="red"),
        )
        return table

    def __call__(self, event: stream.Event) -> None:
        if isinstance(event, stream.TaskStarted):
            self.play, self.task = event.play, event.task
        elif isinstance(event, stream.HostReported):
            self.hosts[event.result.host] = event.result
        else:
            return
        self.live.update(self._render())


class ContainLive(_LiveView):
    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.stages: list[list[str]] = []
        self.hosts: dict[str, HostResult] = {}
        self.task = ""
        self.history: dict[str, list[int]] = {}
        self.started = time.monotonic()
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Group:
        stages = Table(title=self.title, expand=False)
        for col in ("stage", "state", "targets", "detail"):
            stages.add_column(col)
        for name, state, targets, detail in self.stages:
            stages.add_row(name, Text(state, style=_STYLE.get(state, "")), targets, detail)
        counts = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
        for hr in self.hosts.values():
            counts[hr.status] += 1
        hosts = Text.assemble(f"task: {self.task}   hosts done {counts['ok'] + counts['changed']} "
                              f"(changed {counts['changed']})   ",
                              (f"failed {counts['failed']}  unreachable {counts['unreachable']}", "red"))
        infections = Table(title="detections per sub-area (last samples, newest right)")
        infections.add_column("sub-area")
        infections.add_column("now")
        infections.add_column("over time")
        for seg, series in sorted(self.history.items()):
            infections.add_row(seg, str(series[-1]), " ".join(str(v) for v in series[-12:]))
        return Group(stages, hosts, infections)

    def _refresh(self) -> None:
        self.live.update(self._render())

    def __call__(self, event: stream.Event) -> None:
        match event:
            case stream.TaskStarted(task=task):
                self.task = task
            case stream.HostReported(result=result):
                self.hosts[result.host] = result
            case stream.StageStarted(label=label, targets=targets, summary=summary):
                shown = ", ".join(targets) if len(targets) <= 3 else f"{len(targets)} hosts"
                self.stages.append([label, "running", shown, summary])
                self.hosts = {}
            case stream.StageEnded(label=label, ok=ok, targets=targets, detail=detail):
                state = "done" if ok else "failed"
                for row in self.stages:
                    if row[0] == label and row[1] == "running":
                        row[1], row[3] = state, detail or row[3]
                        break
                else:
                    shown = ", ".join(targets) if len(targets) <= 3 else f"{len(targets)} hosts"
                    self.stages.append([label, state, shown, detail])
            case stream.Detections(by_segment=by_segment):
                for seg in set(self.history) | set(by_segment):
                    self.history.setdefault(seg, []).append(by_segment.get(seg, 0))
            case stream.Notice(text=text):
                self.live.console.print(text)
                return
            case _:
                return
        self._refresh()


class RemediationLive(_LiveView):
    """A remediation: the current step (method or verification) and every host's state."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.step_name = ""
        self.task = ""
        self.states: dict[str, str] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        table = Table.grid(padding=(0, 2))
        table.add_row(Text(self.title, style="bold"), f"step: {self.step_name}", f"task: {self.task}")
        table.add_row("hosts " + str(len(self.states)),
                      "  ".join(f"{state} {n}" for state, n in sorted(counts.items())), "")
        return table

    def __call__(self, event: stream.Event) -> None:
        match event:
            case stream.TaskStarted(task=task):
                self.task = task
            case stream.StageStarted(label=label, targets=targets):
                self.step_name = f"{label} on {len(targets)} host(s)"
            case stream.HostStateChanged(host=host, state=state):
                self.states[host] = state
            case stream.Notice(text=text):
                self.live.console.print(text)
                return
            case _:
                return
        self.live.update(self._render())
