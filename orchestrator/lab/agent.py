"""The lab's in-namespace programs: plain TCP services, the simulated vulnerable service and the lab worm.

Run as ``python -m orchestrator.lab.agent {run,worm,seed} --config FILE`` inside a lab namespace (the
lab builder and ``irm lab infect`` start them with ``ip netns exec``). Standard library only, so they
start fast and need nothing but the host's config file, which the lab builder writes from the inventory.

Safety: the worm is harmless by construction. It only opens TCP connections to the addresses in its
config's target list (built from the lab inventory; it never scans), drops any target outside the
lab prefixes, refuses to start outside a lab namespace, and stops by itself after ``lifetime`` seconds
or as soon as its host's infection marker is removed (disinfected).

Files, all under the host's state directory:
    infected.json   the infection marker (since when, from whom)
    patched         when present, the vulnerable service rejects the payload
    av.log          detection events, JSON lines (path from the inventory's irm_av_log)
    worm.log        the worm's own log of every attempt, JSON lines
    worm.pid        the running worm's PID
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PAYLOAD_MAGIC = b"IRMLAB-WORM/1 "
MAX_LIFETIME = 3600.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _state(cfg: dict[str, Any], name: str) -> Path:
    return Path(cfg["state_dir"]) / name


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def in_lab_namespace(cfg: dict[str, Any]) -> bool:
    """True only inside this host's lab namespace (never in the machine's own network namespace).

    The namespace must be the one ``ip netns add`` created for this host; where init's namespace is
    readable it must also differ from it.
    """
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
        named = os.stat(f"/run/netns/{cfg['netns']}").st_ino
    except OSError:
        return False
    try:
        init: int | None = os.stat("/proc/1/ns/net").st_ino
    except OSError:
        init = None
    return mine == named and mine != init


def in_lab_prefixes(cfg: dict[str, Any], address: str) -> bool:
    addr = ipaddress.IPv4Address(address)
    return any(addr in ipaddress.IPv4Network(p) for p in cfg["prefixes"])


# ------------------------------------------------------------------------------------------------
# Infection


def infect_here(cfg: dict[str, Any], source_address: str, source_host: str | None) -> bool:
    """Write the infection marker (exclusively: one infection per host) and start the worm."""
    marker = _state(cfg, "infected.json")
    record = {
        "host": cfg["host"],
        "since": now_iso(),
        "source_address": source_address,
        "source_host": source_host,
        "signature": cfg["worm"]["signature"],
    }
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, sort_keys=True)
    start_worm(cfg)
    return True


def start_worm(cfg: dict[str, Any]) -> int:
    out = open(Path(cfg["lab_dir"]) / "worm.out", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [cfg["python"], "-m", "orchestrator.lab.agent", "worm", "--config", cfg["config_path"]],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True, close_fds=True,
    )
    out.close()
    _state(cfg, "worm.pid").write_text(f"{proc.pid}\n")
    return proc.pid


# ------------------------------------------------------------------------------------------------
# Services


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _banner_handler(cfg: dict[str, Any], name: str) -> type[socketserver.BaseRequestHandler]:
    class Banner(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):
                self.request.sendall(f"{name} OK {cfg['host']}\n".encode())

    return Banner


def _vulnerable_handler(cfg: dict[str, Any]) -> type[socketserver.BaseRequestHandler]:
    class Vulnerable(socketserver.StreamRequestHandler):
        timeout = 3

        def handle(self) -> None:
            try:
                line = self.rfile.readline(4096)
            except OSError:
                return
            if not line.startswith(PAYLOAD_MAGIC):
                return  # a probe or anything else: nothing happens
            try:
                payload = json.loads(line[len(PAYLOAD_MAGIC):])
            except ValueError:
                return
            source_address = self.client_address[0]
            if _state(cfg, "patched").exists():
                answer = b"REJECTED patched\n"
            elif infect_here(cfg, source_address, payload.get("origin")):
                answer = b"INFECTED\n"
            else:
                answer = b"ALREADY\n"
            with contextlib.suppress(OSError):
                self.wfile.write(answer)

    return Vulnerable


def run_services(cfg: dict[str, Any]) -> None:
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to start: not inside lab namespace {cfg['netns']}")
    servers: list[_Server] = []
    for svc in cfg["services"]:
        servers.append(_Server((cfg["address"], svc["port"]), _banner_handler(cfg, svc["name"])))
    if cfg["vulnerable"]:
        for port in cfg["worm"]["ports"]:
            servers.append(_Server((cfg["address"], port), _vulnerable_handler(cfg)))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    (Path(cfg["lab_dir"]) / "agent.ready").write_text(f"{os.getpid()}\n")
    stop.wait()
    for server in servers:
        server.shutdown()


# ------------------------------------------------------------------------------------------------
# The worm


def _detect_later(cfg: dict[str, Any], infection: dict[str, Any]) -> None:
    """The simulated AV: report the infection after the detection delay, unless it misses it."""
    worm = cfg["worm"]
    rng = random.Random(f"{cfg['host']}|{infection.get('since')}")
    if rng.random() < float(worm.get("miss_rate", 0.0)):
        return

    def report() -> None:
        append_jsonl(Path(cfg["av_log"]), {
            "time": now_iso(),
            "host": cfg["host"],
            "address": cfg["address"],
            "signature": worm["signature"],
            "action": "detected",
            "source_address": infection.get("source_address"),
            "source_host": infection.get("source_host"),
            "product": "irm-lab-av",
        })

    timer = threading.Timer(float(worm.get("detection_delay", 0.0)), report)
    timer.daemon = False
    timer.start()


def attempt(cfg: dict[str, Any], address: str, port: int, timeout: float) -> str:
    if not in_lab_prefixes(cfg, address):
        return "refused-outside-lab"
    payload = PAYLOAD_MAGIC + json.dumps({"origin": cfg["host"], "signature": cfg["worm"]["signature"]}).encode()
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout * 4)
            sock.sendall(payload + b"\n")
            reply = sock.recv(128).decode(errors="replace").strip()
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error:{exc.errno}"
    if reply.startswith("INFECTED"):
        return "infected"
    if reply.startswith("ALREADY"):
        return "already"
    if reply.startswith("REJECTED"):
        return "rejected"
    return "no-answer"


def run_worm(cfg: dict[str, Any]) -> None:
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to start: not inside lab namespace {cfg['netns']}")
    marker = _state(cfg, "infected.json")
    if not marker.exists():
        sys.exit("refusing to start: this host is not infected")
    infection = json.loads(marker.read_text(encoding="utf-8"))
    _detect_later(cfg, infection)
    log = _state(cfg, "worm.log")
    worm = cfg["worm"]
    lifetime = min(float(worm["lifetime"]), MAX_LIFETIME)
    interval = 1.0 / float(worm["rate"])
    timeout = min(0.5, max(0.1, interval))
    targets = [t for t in cfg["targets"] if t["host"] != cfg["host"] and in_lab_prefixes(cfg, t["address"])]
    rng = random.Random(f"{cfg['host']}|{infection.get('since')}")
    rng.shuffle(targets)
    append_jsonl(log, {"time": now_iso(), "event": "start", "host": cfg["host"], "targets": len(targets),
                       "lifetime": lifetime, "rate": worm["rate"]})
    started = time.monotonic()
    n = 0
    reason = "lifetime"
    while targets and time.monotonic() - started < lifetime:
        if not marker.exists():
            reason = "disinfected"
            break
        target = targets[n % len(targets)]
        port = worm["ports"][(n // len(targets)) % len(worm["ports"])]
        tick = time.monotonic()
        result = attempt(cfg, target["address"], port, timeout)
        append_jsonl(log, {"time": now_iso(), "event": "attempt", "target": target["host"],
                           "address": target["address"], "port": port, "result": result})
        n += 1
        time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    append_jsonl(log, {"time": now_iso(), "event": "stop", "reason": reason, "attempts": n})


def seed(cfg: dict[str, Any]) -> None:
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to seed: not inside lab namespace {cfg['netns']}")
    if not infect_here(cfg, "seed", None):
        sys.exit(f"{cfg['host']} is already infected")
    print(f"{cfg['host']} infected (seed)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orchestrator.lab.agent")
    parser.add_argument("command", choices=["run", "worm", "seed"])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    {"run": run_services, "worm": run_worm, "seed": seed}[args.command](cfg)


if __name__ == "__main__":
    main()
