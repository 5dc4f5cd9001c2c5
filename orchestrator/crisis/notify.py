"""Telling the crisis cell: when an incident opens and at every phase change, by email (SMTP) to every
directory entry with an address for the areas concerned, and to a webhook when one is configured.

A notification never blocks the response: each channel has a timeout, a failure is journaled
(``notify_failed``) and published for whoever listens (the CLI prints it), and the response goes on.

The notifier is a listener of a run's event stream (``core.stream``): ``listen`` subscribes it, and the
phases do so themselves, so a library caller of a phase tells the crisis cell exactly as the CLI does.
Each ``DecisionNeeded`` is sent on every configured channel; each outcome comes back on the stream as a
``NotificationSent``.
"""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from orchestrator.core.events import EventKind
from orchestrator.core.inventory import LAB_SPACE, Inventory
from orchestrator.core.journal import Journal
from orchestrator.core.stream import DecisionNeeded, Event, EventStream, NotificationSent


@dataclass
class Message:
    incident: int
    event: str  # what happened: "incident opened", "containment finished", ...
    areas: list[str]
    done: list[str]  # what was done, one line each
    next_decision: str  # the next decision the cell has to take
    perimeter: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"[irm] incident {self.incident}: {self.event}" + (f" ({', '.join(self.areas)})" if self.areas else "")

    def text(self) -> str:
        lines = [self.subject, "", f"Perimeter: {', '.join(self.perimeter or self.areas) or 'not defined yet'}",
                 "", "What was done:", *(f"  - {d}" for d in self.done or ["nothing yet"]), "",
                 f"Next decision: {self.next_decision}", ""]
        return "\n".join(lines)


@dataclass
class Delivery:
    channel: str
    ok: bool
    recipients: list[str]
    error: str = ""


def notify(inv: Inventory, journal: Journal, msg: Message, operator: str) -> list[Delivery]:
    """Send ``msg`` on every configured channel; journal each outcome; never raise."""
    from orchestrator.crisis import crisis_cell

    out: list[Delivery] = []
    settings = inv.notify
    if settings.smtp is not None:
        cell, why = crisis_cell.load(inv)
        to = [c.email for c in crisis_cell.recipients(cell, msg.areas) if c.email] if cell else []
        down = lab_address_down(inv, settings.smtp.host)
        if not to:
            out.append(Delivery("email", False, [], why or "no crisis-cell entry has an email address"))
        elif down:
            out.append(Delivery("email", False, to, down))
        else:
            out.append(_email(inv, msg, to))
    if settings.webhook is not None:
        down = lab_address_down(inv, urllib.parse.urlsplit(settings.webhook.url).hostname or "")
        out.append(Delivery("webhook", False, [settings.webhook.url], down) if down else _webhook(inv, msg))
    for d in out:
        if d.ok:
            journal.timeline.add(msg.incident, EventKind.NOTIFIED, operator, None, channel=d.channel,
                                 subject=msg.subject,
                                 recipients=d.recipients)
        else:
            journal.timeline.add(msg.incident, EventKind.NOTIFY_FAILED, operator, None, channel=d.channel,
                                 subject=msg.subject, error=d.error[:500], recipients=d.recipients)
    return out


@dataclass
class Notifier:
    """Sends each decision the crisis cell needs; publishes each channel's outcome on ``stream``."""

    inv: Inventory
    journal: Journal
    stream: EventStream

    def __call__(self, event: Event) -> None:
        if not isinstance(event, DecisionNeeded):
            return
        msg = Message(event.incident, event.event, list(event.areas), list(event.done), event.next_decision)
        for d in notify(self.inv, self.journal, msg, event.operator):
            self.stream.publish(NotificationSent(d.channel, d.ok, tuple(d.recipients), event.event, d.error))


def listen(stream: EventStream, inv: Inventory, journal: Journal) -> None:
    """Subscribe the crisis-cell notifier to ``stream`` when the inventory configures a channel (once: a
    phase run by the watcher shares the watcher's stream)."""
    if any(isinstance(listener, Notifier) for listener in stream.listeners):
        return
    if inv.notify.smtp is not None or inv.notify.webhook is not None:
        stream.subscribe(Notifier(inv, journal, stream))


def lab_address_down(inv: Inventory, host: str) -> str | None:
    """A lab's mailbox lives on the SOC's lab address: while the lab is down that address is nowhere on
    this machine, and a connection to it would leave by the default route. Refused without sending."""
    if inv.lab is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address not in LAB_SPACE:
        return None
    with socket.socket() as probe:
        try:
            probe.bind((host, 0))  # only an address of this machine can be bound
        except OSError:
            return f"the lab's mailbox {host} is not up (irm lab up): nothing sent"
    return None


def _email(inv: Inventory, msg: Message, to: list[str]) -> Delivery:
    smtp = inv.notify.smtp
    assert smtp is not None
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = msg.subject, smtp.sender, ", ".join(to)
    mail["Date"], mail["Message-ID"] = formatdate(localtime=False), make_msgid(domain=smtp.sender.split("@")[1])
    mail.set_content(msg.text())
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username and smtp.password:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        return Delivery("email", False, to, f"SMTP {smtp.host}:{smtp.port}: {exc}")
    if refused:
        return Delivery("email", False, to, f"SMTP {smtp.host}:{smtp.port} refused {', '.join(sorted(refused))}")
    return Delivery("email", True, to)


def _webhook(inv: Inventory, msg: Message) -> Delivery:
    hook = inv.notify.webhook
    assert hook is not None
    body = json.dumps({"incident": msg.incident, "event": msg.event, "areas": msg.areas,
                       "perimeter": msg.perimeter or msg.areas, "done": msg.done, "next_decision": msg.next_decision,
                       "text": msg.text()}).encode()
    request = urllib.request.Request(hook.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "irm"})
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", False, [hook.url], f"{hook.url} answered {exc.code} {exc.reason}")
    except (OSError, ValueError) as exc:
        return Delivery("webhook", False, [hook.url], f"{hook.url}: {getattr(exc, 'reason', None) or exc}")
    return Delivery("webhook", True, [hook.url]) if 200 <= status < 300 else \
        Delivery("webhook", False, [hook.url], f"{hook.url} answered {status}")
