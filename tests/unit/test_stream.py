"""The event stream: delivery in order, a listener that raises is dropped without breaking the publisher,
routed parts show a task once; and a library caller of a phase, with no CLI, sees every stage and tells
the crisis cell (a real webhook on 127.0.0.1 receives it) exactly as the CLI does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.containment.table import STAGES
from orchestrator.core import stream
from orchestrator.core.errors import ContainmentFailed
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.model import NotifySettings
from orchestrator.core.journal import Journal
from orchestrator.core.runner import HostResult
from tests.conftest import LAB_INVENTORY
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections

AREA = "subsidiary-x"


def test_listeners_get_every_event_in_order_until_they_unsubscribe() -> None:
    got_a: list[stream.Event] = []
    got_b: list[stream.Event] = []
    s = stream.EventStream()
    s.subscribe(got_a.append)
    stop_b = s.subscribe(got_b.append)
    s.say("one")
    stop_b()
    s.publish(stream.TaskStarted("p", "t"))
    assert got_a == [stream.Notice("one"), stream.TaskStarted("p", "t")]
    assert got_b == [stream.Notice("one")]


def test_a_listener_that_raises_is_dropped_and_named_the_others_go_on() -> None:
    got: list[stream.Event] = []

    def broken(event: stream.Event) -> None:
        raise RuntimeError("display gone")

    s = stream.EventStream()
    s.subscribe(broken)
    s.subscribe(got.append)
    s.say("one")  # never raises to the publisher
    s.say("two")
    assert got == [stream.Notice("one"), stream.Notice("two")]
    assert len(s.faults) == 1 and "broken" in s.faults[0] and "display gone" in s.faults[0]


def test_routed_parts_show_each_task_once_and_every_host() -> None:
    got: list[stream.Event] = []
    part = stream.once_per_task(stream.EventStream([got.append]))
    for host in ("a", "b"):  # two execution nodes run the same task
        part.publish(stream.TaskStarted("play", "apply"))
        part.publish(stream.HostReported(HostResult(host=host, ok=1), "runner_on_ok"))
    assert [type(e).__name__ for e in got] == ["TaskStarted", "HostReported", "HostReported"]


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


def _job(tmp_path: Path, url: str, run: FakeRunner, **req: Any) -> tuple[Containment, Journal]:
    inv = load_inventory(LAB_INVENTORY).model_copy(
        update={"notify": NotifySettings.model_validate({"webhook": {"url": url}})})
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    request = ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", loop=False, **req)
    return Containment(request, inv, j, NoDetections(), run=run, probe=FakeProber()), j


def test_a_library_caller_sees_each_stage_and_the_cell_is_told(tmp_path: Path,
                                                               hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posted = hook
    job, j = _job(tmp_path, url, FakeRunner())
    got: list[stream.Event] = []
    job.events.subscribe(got.append)
    job.run()
    started = [e.label for e in got if isinstance(e, stream.StageStarted)]
    ended = [(e.label, e.ok) for e in got if isinstance(e, stream.StageEnded)]
    labels = [f"{s.number}. {s.name}" for s in STAGES if s.name != "subareas"]
    assert started == labels and ended == [(label, True) for label in labels]
    assert sum(isinstance(e, stream.HostReported) for e in got) >= len(job.area.hosts)
    decision = [e for e in got if isinstance(e, stream.DecisionNeeded)]
    assert len(decision) == 1 and decision[0].event == "containment done" and decision[0].areas == (AREA,)
    sent = [e for e in got if isinstance(e, stream.NotificationSent)]
    assert [(e.channel, e.ok) for e in sent] == [("webhook", True)]
    assert [p["event"] for p in posted] == ["containment done"]
    assert j.timeline.of(1)[-1]["kind"] == "notified"


def test_a_failed_containment_is_told_too_and_a_dry_run_tells_nobody(tmp_path: Path,
                                                                       hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posted = hook
    for d in ("dry", "real"):
        (tmp_path / d).mkdir()
    job, _ = _job(tmp_path / "dry", url, FakeRunner(), dry_run=True)
    job.run()
    assert posted == []
    job, _ = _job(tmp_path / "real", url, FakeRunner(fail={("contain_1_internet_cut", "edge-fw"): "refused"}),
                  confirm_timeout=0)
    with pytest.raises(ContainmentFailed):
        job.run()
    assert [p["event"] for p in posted] == ["containment FAILED"]


def test_the_notifier_listens_once_per_stream(tmp_path: Path) -> None:
    """A phase run by the watcher shares the watcher's stream: the cell is told once, not twice."""
    from orchestrator.crisis import notify

    inv = load_inventory(LAB_INVENTORY).model_copy(
        update={"notify": NotifySettings.model_validate({"webhook": {"url": "http://127.0.0.1:9/hook"}})})
    s = stream.EventStream()
    with Journal(tmp_path / "j.db") as j:
        notify.listen(s, inv, j)
        notify.listen(s, inv, j)
    assert sum(isinstance(listener, notify.Notifier) for listener in s.listeners) == 1


def test_a_signal_during_a_play_goes_to_irm_s_own_handler_or_cancels_the_play() -> None:
    """While a play runs, a SIGTERM reaches the handler irm installed (irm watch: stop after this change)
    and the play goes on; a SIGINT with Python's default handler cancels the play (as ansible-runner
    would), never raising in the middle of it. The handlers are back after the play."""
    import os
    import signal

    from orchestrator.core import runner

    got: list[int] = []

    def ours(signum: int, frame: object) -> None:
        got.append(signum)

    before_term = signal.signal(signal.SIGTERM, ours)
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with runner._play_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            assert got == [signal.SIGTERM] and not runner._cancel_requested()
            os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt here: the play is canceled
            assert runner._cancel_requested()
        assert signal.getsignal(signal.SIGTERM) is ours
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before_term)
        signal.signal(signal.SIGINT, before_int)
