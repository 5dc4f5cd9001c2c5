"""irm serve: the live feed a run writes, the board's snapshot, the read-only web application (no write
endpoint, token, Host check, security headers), the CLI's refusals, and the board in headless Chromium:
hostile text shown as text, and a journal change pushed to the page without a reload."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from starlette.testclient import TestClient

from orchestrator.board import feed as fd
from orchestrator.board.state import snapshot
from orchestrator.board.web import COOKIE, Hub, create_app
from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.core import stream
from orchestrator.core.events import EventKind
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.core.runner import HostResult
from tests.browser import board, chromium, wait_until
from tests.conftest import LAB_INVENTORY, irm
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>{{7*7}}"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return without_channels(load_inventory(LAB_INVENTORY))


def _contain(j: Journal, inv: Inventory, area: str, incident: int | None = None) -> None:
    Containment(ContainRequest(inventory=LAB_INVENTORY, area=area, operator="op", loop=False, incident_id=incident),
                inv, j, NoDetections(), run=FakeRunner(), probe=FakeProber()).run()


def _journal(tmp_path: Path, worm: str = "lab-worm") -> Journal:
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm=worm, vectors=["tcp/4445"]), "op")
    return j


# -- the feed -----------------------------------------------------------------------------------------

def test_a_feed_says_names_and_states_only_and_goes_with_its_run(tmp_path: Path) -> None:
    events = stream.EventStream()
    journal = tmp_path / "j.db"
    with fd.attached(events, journal, "irm contain --area subsidiary-x") as feed:
        assert feed.path is None and not fd.folder(journal).exists()  # nothing until the run says something
        events.publish(stream.StageStarted("3. vectors", ("x-ws11", "x-ws12"), "block tcp/4445"))
        assert feed.path is not None
        assert stat.S_IMODE(os.stat(feed.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(fd.folder(journal)).st_mode) == 0o700
        secret = HostResult(host="x-ws11", changed=1, facts={"irm_secret": "hunter2"}, failures=["token=abc"])
        events.publish(stream.HostReported(secret, "runner_on_ok"))
        tail = fd.Tail(journal)
        assert tail.changed()
        runs = tail.read()
        assert not tail.changed()
        (view,) = runs.values()
        assert view.command == "irm contain --area subsidiary-x" and view.stage == "3. vectors"
        assert view.hosts == {"x-ws11": "changed", "x-ws12": "pending"}
        text = feed.path.read_text()
        assert "hunter2" not in text and "token=abc" not in text
        events.publish(stream.StageEnded("3. vectors", True, ("x-ws11", "x-ws12")))
        assert tail.changed()
        (view,) = tail.read().values()
        assert view.stage == "" and view.ended[-1]["label"] == "3. vectors"
        path = feed.path
    assert not path.exists() and not fd.folder(journal).exists()  # the run ended: its feed is gone
    assert fd.Tail(journal).read() == {}


def test_a_killed_runs_feed_is_ignored_then_swept(tmp_path: Path) -> None:
    folder = fd.folder(tmp_path / "j.db")
    folder.mkdir(mode=0o700)
    dead = folder / "run-999999999-0123abcd.jsonl"  # no such pid
    dead.write_text(json.dumps({"kind": "run", "command": "irm contain", "pid": 999999999}) + "\n")
    assert fd.Tail(tmp_path / "j.db").read() == {}
    events = stream.EventStream()
    with fd.attached(events, tmp_path / "j.db", "irm recover"):
        events.publish(stream.Notice("resuming"))
        assert not dead.exists()


def test_no_feed_in_a_directory_others_can_write(tmp_path: Path) -> None:
    folder = fd.folder(tmp_path / "j.db")
    folder.mkdir()
    folder.chmod(0o777)
    events = stream.EventStream()
    with fd.attached(events, tmp_path / "j.db", "irm contain") as feed:
        events.publish(stream.Notice("hello"))  # the stage goes on; nothing is written
        assert feed.path is None and list(folder.iterdir()) == []


# -- the snapshot -------------------------------------------------------------------------------------

def test_the_snapshot_is_the_journal_and_the_live_feeds(tmp_path: Path, inv: Inventory) -> None:
    j = _journal(tmp_path)
    empty = snapshot(inv, tmp_path / "none.db", fd.Tail(tmp_path / "none.db"))
    assert empty["incident"] is None and empty["areas"] == []
    _contain(j, inv, "subsidiary-x")
    j.timeline.add(1, EventKind.DETECTIONS, "op", "subsidiary-x", count=2, hosts=["x-ws11"], items=[
        {"time": "2026-12-03T10:00:05+00:00", "host": "x-ws11", "signature": "w", "action": "blocked"},
        {"time": "2026-12-03T10:00:45+00:00", "host": "x-ws11", "signature": "w", "action": "blocked"}])
    j.hosts.set_reach(1, "subsidiary-x", ["x-ws22"], "unreachable", "vectors")
    events = stream.EventStream()
    with fd.attached(events, j.path, "irm recover --area subsidiary-x"):
        events.publish(stream.StageStarted("1. vectors", ("x-ws11",)))
        data = snapshot(inv, j.path, fd.Tail(j.path))
    areas = {a["name"]: a for a in data["areas"]}
    assert areas["subsidiary-x"]["posture"] == "isolated" and areas["hq"]["posture"] == "connected"
    shown = {s["scope"]: s["shown"] for s in areas["subsidiary-x"]["segments"]}
    assert shown["subsidiary-x/office-1"] == "isolated" and shown["subsidiary-x/vpn"] == "blocked"
    assert areas["subsidiary-x"]["last_change"]["stage"] == "containment mobile"
    kinds = [e["kind"] for e in data["timeline"]]
    assert kinds[0] == "incident_opened" and kinds.count("stage_ended") == 4
    assert data["detections"]["series"]["subsidiary-x/office-1"] == [["2026-12-03T10:00:00+00:00", 2]]
    assert any(d["kind"] == "unreachable" and "x-ws22" in d["text"] for d in data["decisions"])
    (run,) = data["running"]
    assert run["stage"] == "1. vectors" and run["hosts"] == [{"host": "x-ws11", "status": "pending"}]
    json.dumps(data)  # plain JSON


# -- the web application ------------------------------------------------------------------------------

def test_the_board_has_no_write_endpoint_and_sets_its_headers(tmp_path: Path, inv: Inventory) -> None:
    j = _journal(tmp_path, worm=HOSTILE)
    _contain(j, inv, "subsidiary-x")
    app = create_app(inv, j.path, hosts=["127.0.0.1", "testserver"])
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert 'data-scope="subsidiary-x/office-1"' in page.text and "<script>alert" not in page.text
        state = client.get("/state").json()
        assert state["incident"]["worm"] == HOSTILE  # data, never markup: the page draws it as text
        for path in ("/", "/state", "/events", "/report", "/health", "/static/board.js"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert client.request(method, path).status_code == 405, (method, path)
        assert client.get("/nothing").status_code == 404
        assert client.get("/", headers={"host": "attacker.example"}).status_code == 400
        report = client.get("/report")
        assert report.status_code == 200 and "script-src" not in report.headers["content-security-policy"]
        assert "<script>alert(2)" not in report.text


def test_a_token_guards_every_page(tmp_path: Path, inv: Inventory) -> None:
    j = _journal(tmp_path)
    token = "s3cret-token-0123456789"
    with TestClient(create_app(inv, j.path, token=token, hosts=["testserver"])) as client:
        assert client.get("/state").status_code == 401
        assert client.get("/static/board.js").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        assert client.get("/state", headers={"authorization": f"Bearer {token}"}).status_code == 200
        first = client.get(f"/?token={token}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert COOKIE in first.cookies and "httponly" in first.headers["set-cookie"].lower()
        assert client.get("/state").status_code == 200  # the cookie now


def test_the_hub_pushes_a_changed_snapshot_once_to_every_browser(tmp_path: Path, inv: Inventory) -> None:
    j = _journal(tmp_path)
    hub = Hub(inv, j.path, None, [])

    async def scenario() -> tuple[int, list[bytes]]:
        boxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(maxsize=1) for _ in range(50)]
        hub.mailboxes.update(boxes)
        hub.publish(hub.build())
        hub.publish(hub.build())  # the same content again: not pushed
        pushed = [b.get_nowait() for b in boxes]
        return sum(b.qsize() for b in boxes), pushed

    left, pushed = asyncio.run(scenario())
    assert left == 0 and len(set(pushed)) == 1 and hub.version == 1 and hub.builds == 2
    _contain(j, inv, "hq")
    hub.publish(hub.build())
    assert hub.version == 2 and json.loads(hub.current)["areas"][0]["posture"] == "isolated"


# -- irm serve's refusals -----------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (["--listen", "0.0.0.0"], "needs TLS"),
    (["--listen", "198.18.0.2", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "needs TLS"),
    (["--listen", "localhost"], "not an IP address"),
    (["--tls-cert", "c.pem"], "go together"),
    (["--client-ca", "ca.pem"], "needs --tls-cert"),
    (["--token-file", "missing-token"], "--token-file missing-token"),
])
def test_serve_refuses_an_unsafe_or_wrong_setup_in_one_line(args: list[str], says: str) -> None:
    proc = irm("serve", "-i", str(LAB_INVENTORY), *args, timeout=60)
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_serve_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-long-enough-token-0123\n")
    token.chmod(0o644)
    proc = irm("serve", "-i", str(LAB_INVENTORY), "--token-file", str(token), timeout=60)
    assert proc.returncode == 2 and "readable by others" in proc.stderr


# -- in a real browser --------------------------------------------------------------------------------

def test_the_page_draws_hostile_text_as_text_and_follows_the_journal(tmp_path: Path, inv: Inventory) -> None:
    j = _journal(tmp_path, worm=HOSTILE)
    j.decisions.add_note(1, HOSTILE, "note", HOSTILE)
    _contain(j, inv, "subsidiary-x")
    with board(j.path, LAB_INVENTORY) as url, chromium() as driver:
        driver.get(url + "/")
        wait_until(driver, "return document.querySelector('#areas tr[data-area=\"subsidiary-x\"]')")
        assert HOSTILE in driver.find_element("id", "incident").text
        assert driver.execute_script("return document.scripts.length") == 1  # board.js only
        assert driver.execute_script("return document.querySelectorAll('img').length") == 0
        with pytest.raises(NoAlertPresentException):  # no script of the hostile text ever ran
            driver.switch_to.alert.text  # noqa: B018
        assert wait_until(driver, "return document.querySelector('#map rect[data-scope=\"subsidiary-x\"]')"
                          ".getAttribute('class')") == "posture-isolated"
        generated = driver.execute_script("return document.body.getAttribute('data-generated')")
        # a change in the journal reaches the open page by itself (no reload)
        before = time.monotonic()
        _contain(j, inv, "hq")
        wait_until(driver, "return document.querySelector('#areas tr[data-area=\"hq\"]')"
                   ".getAttribute('data-posture') === 'isolated'", timeout=10)
        took = time.monotonic() - before
        assert driver.execute_script("return document.body.getAttribute('data-generated')") != generated
        assert driver.execute_script("return performance.getEntriesByType('navigation').length") == 1
        print(f"journal change to the page: {took:.2f}s (including the fake containment)")
