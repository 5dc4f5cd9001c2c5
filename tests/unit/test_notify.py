"""Telling the crisis cell: a real SMTP server (aiosmtpd) and a real HTTP webhook on 127.0.0.1 receive
the message; a channel that fails is journaled and returned, never raised; the directory is checked
for missing roles and stale entries."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.model import CrisisCell, NotifySettings
from orchestrator.core.journal import Journal
from orchestrator.crisis import crisis_cell
from orchestrator.crisis.notify import Message, notify
from orchestrator.lab.mailbox import serve
from tests.conftest import LAB_INVENTORY

TODAY = date.today()


def _cell(reviewed: date = TODAY, drop: str | None = None) -> CrisisCell:
    def who(role: str, mail: str) -> dict[str, Any]:
        return {"role": role, "name": f"N {mail}", "email": f"{mail}@corp.example", "reviewed_at": reviewed}

    contacts = [who(r, r) for r in ("crisis_lead", "ciso", "external_cert") if r != drop]
    areas = {a: [who("business_owner", f"owner.{a}"), who("it_contact", f"it.{a}")]
             for a in ("hq", "subsidiary-x", "subsidiary-y", "subsidiary-z")}
    return CrisisCell.model_validate({"contacts": contacts, "areas": areas})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inv() -> Inventory:
    return load_inventory(LAB_INVENTORY)


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


def test_the_cell_gets_the_mail_and_the_webhook(tmp_path: Path, inv: Inventory,
                                                hook: tuple[str, list[dict[str, Any]]]) -> None:
    port = _free_port()
    box = serve("127.0.0.1", port, tmp_path / "mail")
    try:
        inv = inv.model_copy(update={
            "crisis_cell": _cell(), "crisis_cell_file": None,
            "notify": NotifySettings.model_validate({"smtp": {"host": "127.0.0.1", "port": port,
                                                              "sender": "irm@corp.example"},
                                                     "webhook": {"url": hook[0]}})})
        with Journal(tmp_path / "j.db") as j:
            inc = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
            msg = Message(inc.id, "containment done", ["subsidiary-x"], ["subsidiary-x: first cut after 0.8s"],
                          "the remediation plan")
            sent = notify(inv, j, msg, "op")
            events = [e for e in j.timeline.of(inc.id) if e["kind"] in ("notified", "notify_failed")]
    finally:
        box.stop()
    assert [(d.channel, d.ok) for d in sent] == [("email", True), ("webhook", True)]
    mails = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(mails) == 1
    mail = email.message_from_bytes(mails[0].read_bytes())
    assert mail["Subject"] == f"[irm] incident {inc.id}: containment done (subsidiary-x)"
    # the whole cell and the area's own contacts, not the other areas'
    assert sorted(mail.get_all("X-Envelope-To") or []) == sorted(
        f"{m}@corp.example" for m in ("crisis_lead", "ciso", "external_cert", "owner.subsidiary-x", "it.subsidiary-x"))
    body = mail.get_payload()
    assert "Next decision: the remediation plan" in body and "first cut after 0.8s" in body
    assert hook[1][0]["event"] == "containment done" and hook[1][0]["areas"] == ["subsidiary-x"]
    assert [(e["kind"], e["detail"]["channel"]) for e in events] == [("notified", "email"), ("notified", "webhook")]


def test_a_failed_channel_is_journaled_not_raised(tmp_path: Path, inv: Inventory) -> None:
    dead = _free_port()  # nothing listens there
    inv = inv.model_copy(update={
        "crisis_cell": _cell(), "crisis_cell_file": None,
        "notify": NotifySettings.model_validate({"smtp": {"host": "127.0.0.1", "port": dead, "sender": "i@c.example",
                                                          "timeout": 2},
                                                 "webhook": {"url": f"http://127.0.0.1:{dead}/x", "timeout": 2}})})
    with Journal(tmp_path / "j.db") as j:
        inc = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
        sent = notify(inv, j, Message(inc.id, "incident opened", [], [], "the perimeter"), "op")
        events = [e for e in j.timeline.of(inc.id) if e["kind"] == "notify_failed"]
    assert [(d.channel, d.ok) for d in sent] == [("email", False), ("webhook", False)]
    assert "refused" in sent[0].error.lower() and str(dead) in sent[0].error
    assert [e["detail"]["channel"] for e in events] == ["email", "webhook"]


def test_the_directory_names_missing_roles_and_stale_entries(inv: Inventory) -> None:
    assert crisis_cell.problems(inv, _cell(), TODAY) == []
    missing = crisis_cell.problems(inv, _cell(drop="external_cert"), TODAY)
    assert missing == ["crisis cell: no external_cert (contacts: role external_cert, name, email or phone, "
                       "reviewed_at)"]
    stale = crisis_cell.problems(inv, _cell(reviewed=TODAY - timedelta(days=91)), TODAY)
    assert len(stale) == 3 + 2 * 4 and "was last reviewed 91 days ago" in stale[0]  # 3 roles, 2 per area
    assert crisis_cell.problems(inv, _cell(reviewed=TODAY - timedelta(days=90)), TODAY) == []
    no_area = _cell().model_copy(update={"areas": {}})
    assert "crisis cell: area hq has no business_owner" in crisis_cell.problems(inv, no_area, TODAY)


def test_the_directory_file_is_read_when_used(tmp_path: Path, inv: Inventory) -> None:
    path = tmp_path / "cell.yml"
    use = inv.model_copy(update={"crisis_cell": None, "crisis_cell_file": str(path)})
    assert "cannot be read" in (crisis_cell.load(use)[1] or "")
    path.write_text("contacts:\n  - {role: ciso, name: A, reviewed_at: 2026-01-01}\n")
    assert crisis_cell.load(use)[1] == (f"crisis-cell directory {path}: contacts.0: Value error, ciso A: give an "
                                        "email or a phone")
    path.write_text("areas:\n  nowhere: []\n")
    assert crisis_cell.load(use)[1] == f"crisis-cell directory {path}: areas.nowhere: no such area in {inv.source}"
    path.write_text("contacts: [\n")
    assert "not valid YAML" in (crisis_cell.load(use)[1] or "")
