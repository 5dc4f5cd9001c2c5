"""The emulated IOS device's SSH server, run by the lab inside a boundary's namespace:

    python -m orchestrator.lab.ios_server --state DIR --listen ADDR:PORT --authorized-key FILE \\
        [--interface IOSNAME=LINUXNAME ...] [--minute SECONDS]

An emulator, not IOS (see ``ios_cli``). It serves interactive shells (what Ansible's network_cli and
netmiko open) and single commands (``ssh gw 'show version'``), authenticating the lab's key only. The
running-config is written whole to ``DIR/config.json`` on every change (what the lab and its tests
read); ``write memory`` saves it as the startup-config, ``DIR/startup.json``, which a restarted server
(a reboot) boots on, as IOS does (without one, it boots on ``DIR/config.json``). Every change, the
revert timer's included, is enforced on the namespace's real traffic at once (``ios_enforce``: the
``inet ios`` table, loaded with ``nft -f``). The host key is ``DIR/host_key`` (made on first start).
Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import paramiko

from orchestrator.lab import ios_enforce
from orchestrator.lab.ios_cli import AceEntry, Config, Device, Interface, Session

BANNER = "\r\nirm lab: emulated IOS device (not IOS)\r\n\r\n"


def load_config(path: Path) -> Config:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Config(hostname=data["hostname"],
                  interfaces={n: Interface(**i) for n, i in data.get("interfaces", {}).items()},
                  acls={n: [AceEntry(**e) for e in entries] for n, entries in data.get("acls", {}).items()},
                  archive_path=data.get("archive_path", ""), archive_maximum=data.get("archive_maximum", 0))


def save_config(path: Path, config: Config) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(config), indent=1), encoding="utf-8")
    os.replace(tmp, path)


class Enforcer:
    """Keeps the state file and the namespace's ``inet ios`` table equal to the running-config."""

    def __init__(self, state: Path, interfaces: dict[str, str]) -> None:
        self.path = state / "config.json"
        self.interfaces = interfaces
        self.lock = threading.Lock()

    def __call__(self, config: Config) -> None:
        with self.lock:
            save_config(self.path, config)
            proc = subprocess.run(["nft", "-f", "-"], input=ios_enforce.ruleset(config, self.interfaces),
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:  # never silent: the server's log says so
                print(f"ios_server: nft refused the access lists: {proc.stderr.strip()}", file=sys.stderr, flush=True)


def kernel_hits() -> dict[tuple[str, int], int]:
    """The packets each access-list entry matched: the counters of this namespace's ``inet ios`` table."""
    proc = subprocess.run(["nft", "-j", "list", "table", "inet", ios_enforce.TABLE], capture_output=True, text=True,
                          check=False)
    return ios_enforce.hits(proc.stdout) if proc.returncode == 0 else {}


def kernel_neighbours(interfaces: dict[str, str]) -> list[tuple[str, str, str]]:
    """The namespace's IPv4 neighbour table (``ip -j neigh``), on the device's interfaces by IOS name: what
    this router has resolved, as a real one's ARP table holds it."""
    by_linux = {linux: ios for ios, linux in interfaces.items()}
    proc = subprocess.run(["ip", "-4", "-j", "neigh", "show"], capture_output=True, text=True, check=False)
    try:
        rows = json.loads(proc.stdout or "[]")
    except ValueError:
        return []
    return [(r["dst"], r["lladdr"], by_linux[r["dev"]]) for r in rows
            if r.get("lladdr") and r.get("dev") in by_linux and "FAILED" not in r.get("state", [])]


class _Auth(paramiko.ServerInterface):
    def __init__(self, key: paramiko.PKey) -> None:
        self.key = key
        self.command: bytes | None = None
        self.ready = threading.Event()

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        same = key.get_name() == self.key.get_name() and key.asbytes() == self.key.asbytes()
        return int(paramiko.AUTH_SUCCESSFUL if same else paramiko.AUTH_FAILED)

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return int(paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)

    def check_channel_pty_request(self, channel: Any, term: bytes, width: int, height: int, pixelwidth: int,
                                  pixelheight: int, modes: bytes) -> bool:
        return True

    def check_channel_shell_request(self, channel: Any) -> bool:
        self.ready.set()
        return True

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        self.command = command
        self.ready.set()
        return True


def _write(channel: paramiko.Channel, text: str) -> None:
    channel.sendall(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())


def shell(channel: paramiko.Channel, session: Session) -> None:
    """An interactive line discipline: echo, backspace, CR or LF ends a line, Ctrl-Z is ``end``."""
    _write(channel, BANNER + session.prompt())
    line, last = "", ""
    while not session.closed:
        data = channel.recv(4096)
        if not data:
            return
        for ch in data.decode(errors="replace"):
            if ch == "\n" and last == "\r":
                last = ch
                continue
            last = ch
            if ch in "\r\n":
                _write(channel, "\n" + session.execute(line))
                line = ""
                if session.closed:
                    return
                _write(channel, session.prompt())
            elif ch in "\x7f\x08":
                if line:
                    line = line[:-1]
                    channel.sendall(b"\x08 \x08")
            elif ch == "\x1a":
                _write(channel, "^Z\n" + session.execute("end") + session.prompt())
                line = ""
            elif ch == "\x03":
                _write(channel, "\n" + session.prompt())
                line = ""
            elif ch.isprintable():
                line += ch
                channel.sendall(ch.encode())


def serve_connection(sock: socket.socket, device: Device, host_key: paramiko.PKey, client_key: paramiko.PKey) -> None:
    transport = paramiko.Transport(sock)
    try:
        transport.add_server_key(host_key)
        auth = _Auth(client_key)
        transport.start_server(server=auth)
        channel = transport.accept(20)
        if channel is None or not auth.ready.wait(20):
            return
        session = device.session()
        if auth.command is not None:
            session.mode = "enable"  # the lab's user is privilege 15
            _write(channel, session.execute(auth.command.decode(errors="replace")))
        else:
            shell(channel, session)
        channel.send_exit_status(0)
        channel.shutdown_write()
        channel.close()
        deadline = time.monotonic() + 5  # the client hangs up once it has the status: let it
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
    except (paramiko.SSHException, OSError, EOFError):
        pass
    finally:
        transport.close()


def _lost_entries(state: Path) -> list[str]:
    """Fault injection for the lab's tests: ``STATE/lose-entries`` lists (one per line) texts whose
    access-list entries the device accepts and then loses, as a concurrent edit would."""
    try:
        return [line for line in (state / "lose-entries").read_text().splitlines() if line.strip()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ios_server")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument("--authorized-key", type=Path, required=True)
    parser.add_argument("--interface", action="append", default=[], help="IOSNAME=LINUXNAME")
    parser.add_argument("--minute", type=float, default=60.0, help="seconds in one revert-timer minute")
    args = parser.parse_args(argv)
    interfaces = dict(item.split("=", 1) for item in args.interface)
    key_file = args.state / "host_key"
    if not key_file.exists():
        paramiko.RSAKey.generate(2048).write_private_key_file(str(key_file))
    host_key = paramiko.RSAKey.from_private_key_file(str(key_file))
    kind, blob = args.authorized_key.read_text().split()[:2]
    client_key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    enforcer = Enforcer(args.state, interfaces)
    # the device boots on its startup-config (saved by ``write memory``), else on the config it was given
    startup = args.state / "startup.json"
    device = Device(load_config(startup if startup.exists() else args.state / "config.json"), minute=args.minute,
                    on_change=enforcer, on_save=lambda config: save_config(startup, config),
                    neighbours=lambda: kernel_neighbours(interfaces), lost_entries=lambda: _lost_entries(args.state),
                    hits=kernel_hits)
    enforcer(device.config)  # what the saved config says, enforced from the start
    addr, port = args.listen.rsplit(":", 1)
    server = socket.create_server((addr, int(port)), reuse_port=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ticker() -> None:
        while not stop.wait(0.5):
            device.tick()

    threading.Thread(target=ticker, daemon=True).start()
    server.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        threading.Thread(target=serve_connection, args=(conn, device, host_key, client_key), daemon=True).start()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
