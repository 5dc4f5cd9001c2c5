"""The lab's in-namespace programs: plain TCP services, the simulated vulnerable service and the lab worm.

Run as ``python -m orchestrator.lab.agent --config FILE {run,worm,seed}`` inside a lab namespace (the
lab builder and ``irm lab infect`` start them with ``ip netns exec``). Standard library only, so they
start fast and need nothing but the host's config file, which the lab builder writes from the inventory.

The same entry point is each lab host's tool box for remediation (``pkg``, ``av``, ``check``), reached
over SSH through the host's ``lab/bin/irm-lab-tool`` wrapper: a package manager whose database is the
host's ``packages.json``, an antivirus (signature update, scan, clean) and a scanner's safe check of
the vulnerable service. The worm can be configured to block some of them on some hosts while it runs
(``irm_lab_worm_blocks``), the way real worms lock the package manager or kill the antivirus.

Safety: the worm is harmless by construction. It only opens TCP connections to the addresses in its
config's target list (built from the lab inventory; it never scans), drops any target outside the
lab prefixes, refuses to start outside a lab namespace, and stops by itself after ``lifetime`` seconds
or as soon as its host's infection marker is removed (disinfected).

Files, all under the host's state directory:
    infected.json   the infection marker (since when, from whom)
    patched         when present, the vulnerable service rejects the payload (written by the lab
                    package manager once the service's package reaches the fixed version)
    packages.json   the lab package manager's database (name -> installed version)
    av-signatures   the lab antivirus's signature version
    av.log          detection events, JSON lines (path from the inventory's irm_av_log)
    worm.log        the worm's own log of every attempt, JSON lines
    worm.pid        the running worm's PID
    guard.pid       the worm's watchdog's PID (hosts where it resists disinfection)
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
CHECK_MAGIC = b"IRMLAB-CHECK/1"
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


WORM_PROCESS = "irm-lab-worm"  # the worm's process name, as a disinfection plan names it
GUARD_PROCESS = "lab-svc-helper"  # its watchdog's: nothing in it names the worm


def _spawn(cfg: dict[str, Any], command: str) -> int:
    """Start this host's agent ``command`` (worm, guard) in its own session; its PID goes to COMMAND.pid."""
    out = open(Path(cfg["lab_dir"]) / "worm.out", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [cfg["python"], "-m", "orchestrator.lab.agent", "--config", cfg["config_path"], command],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", start_new_session=True, close_fds=True,
    )
    out.close()
    _state(cfg, f"{command}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def start_worm(cfg: dict[str, Any]) -> int:
    return _spawn(cfg, "worm")


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
            if line.startswith(CHECK_MAGIC):  # a scanner's safe check: answers, infects nothing
                with contextlib.suppress(OSError):
                    self.wfile.write(b"PATCHED\n" if _state(cfg, "patched").exists() else b"VULNERABLE\n")
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


def _set_process_name(name: str) -> None:
    """The kernel's name of this process (``/proc/PID/comm``, what ``ps`` and disinfection plans see),
    as a real worm's executable has its own name rather than an interpreter's."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def run_worm(cfg: dict[str, Any]) -> None:
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to start: not inside lab namespace {cfg['netns']}")
    _set_process_name(WORM_PROCESS)
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
    if "disinfect" in cfg.get("worm_blocks", []) and guard_running(cfg) is None:
        start_guard(cfg)
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


def _pid_running(cfg: dict[str, Any], pid_file: str, command: bytes) -> int | None:
    """The PID in ``pid_file`` if it is this host's agent running ``command`` (same network namespace)."""
    try:
        pid = int(_state(cfg, pid_file).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        same_netns = os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
        zombie = Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, ValueError, IndexError):
        return None
    return pid if same_netns and not zombie and b"orchestrator.lab.agent" in cmdline and command in cmdline else None


def worm_running(cfg: dict[str, Any]) -> int | None:
    """The PID of this host's running worm, if any."""
    return _pid_running(cfg, "worm.pid", b"worm")


def guard_running(cfg: dict[str, Any]) -> int | None:
    return _pid_running(cfg, "guard.pid", b"guard")


def start_guard(cfg: dict[str, Any]) -> int:
    return _spawn(cfg, "guard")


def run_guard(cfg: dict[str, Any]) -> None:
    """The worm's watchdog, on hosts where it resists disinfection (``irm_lab_worm_blocks: [disinfect]``):
    it puts the infection marker back and restarts the worm whenever they disappear, until its lifetime
    ends or it is killed (a technician, or ``irm lab fix-by-hand``). Its process name does not name the
    worm, so a plan that only kills the worm's process misses it, as plans miss real worms' helpers."""
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to start: not inside lab namespace {cfg['netns']}")
    _set_process_name(GUARD_PROCESS)
    marker = _state(cfg, "infected.json")
    if not marker.exists():
        sys.exit("refusing to start: this host is not infected")
    saved = marker.read_text(encoding="utf-8")
    log = _state(cfg, "worm.log")
    lifetime = min(float(cfg["worm"]["lifetime"]), MAX_LIFETIME)
    started = time.monotonic()
    append_jsonl(log, {"time": now_iso(), "event": "guard-start", "host": cfg["host"]})
    while time.monotonic() - started < lifetime:
        if not marker.exists():
            marker.write_text(saved, encoding="utf-8")
            append_jsonl(log, {"time": now_iso(), "event": "guard-restored-marker"})
        if worm_running(cfg) is None:
            start_worm(cfg)
            append_jsonl(log, {"time": now_iso(), "event": "guard-restarted-worm"})
        time.sleep(0.2)
    append_jsonl(log, {"time": now_iso(), "event": "guard-stop", "reason": "lifetime"})


def seed(cfg: dict[str, Any]) -> None:
    if not in_lab_namespace(cfg):
        sys.exit(f"refusing to seed: not inside lab namespace {cfg['netns']}")
    if not infect_here(cfg, "seed", None):
        sys.exit(f"{cfg['host']} is already infected")
    print(f"{cfg['host']} infected (seed)")


# ------------------------------------------------------------------------------------------------
# The host's remediation tool box: package manager, antivirus, safe vulnerability check


def _version(text: str) -> tuple[tuple[int, str], ...]:
    """Dotted versions compare part by part, numbers as numbers (1.10 > 1.9)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in text.replace("-", ".").split("."))


def _blocked(cfg: dict[str, Any], method: str) -> bool:
    return method in cfg.get("worm_blocks", []) and (worm_running(cfg) or guard_running(cfg)) is not None


def _packages(cfg: dict[str, Any]) -> dict[str, str]:
    path = _state(cfg, "packages.json")
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    pkg = cfg["worm"]["package"]
    return {pkg["name"]: pkg["installed_version"]}


def tool_pkg(cfg: dict[str, Any], args: list[str]) -> int:
    """pkg install NAME=VERSION... | pkg query NAME | pkg check NAME VERSION (installed >= VERSION)."""
    if not args or args[0] not in ("install", "query", "check"):
        print("usage: pkg install NAME=VERSION... | query NAME | check NAME VERSION", file=sys.stderr)
        return 2
    packages = _packages(cfg)
    if args[0] == "query":
        if len(args) != 2 or args[1] not in packages:
            print(f"package {args[1:] or '?'} is not installed", file=sys.stderr)
            return 1
        print(packages[args[1]])
        return 0
    if args[0] == "check":
        if len(args) != 3:
            return 2
        have = packages.get(args[1])
        ok = have is not None and _version(have) >= _version(args[2])
        print(f"{args[1]} {have or 'not installed'} {'>=' if ok else '<'} {args[2]}")
        return 0 if ok else 1
    if _blocked(cfg, "package"):
        print("E: Could not get lock /var/lib/dpkg/lock-frontend: held by another process (the worm)", file=sys.stderr)
        return 100
    vuln = cfg["worm"]["package"]
    for spec in args[1:]:
        name, _, version = spec.partition("=")
        if not name or not version:
            print(f"'{spec}' is not NAME=VERSION", file=sys.stderr)
            return 2
        packages[name] = version
        print(f"installed {name} {version}")
    _state(cfg, "packages.json").write_text(json.dumps(packages, sort_keys=True))
    if vuln["name"] in packages and _version(packages[vuln["name"]]) >= _version(vuln["fixed_version"]):
        _state(cfg, "patched").write_text(f"{vuln['name']} {packages[vuln['name']]}\n")
    return 0


def tool_av(cfg: dict[str, Any], args: list[str]) -> int:
    """av update VERSION | av scan [--clean]: 0 clean (or cleaned), 1 infected, 2 could not run."""
    sig_file = _state(cfg, "av-signatures")
    if args[:1] == ["update"] and len(args) == 2:
        if _blocked(cfg, "antivirus"):
            print("signature update failed: the antivirus update service is stopped (the worm)", file=sys.stderr)
            return 2
        sig_file.write_text(args[1] + "\n")
        print(f"signatures {args[1]}")
        return 0
    if args[:1] != ["scan"]:
        print("usage: av update VERSION | av scan [--clean]", file=sys.stderr)
        return 2
    if _blocked(cfg, "antivirus"):
        print("scan failed: the antivirus engine was killed (the worm)", file=sys.stderr)
        return 2
    signatures = sig_file.read_text().strip() if sig_file.exists() else "0"
    marker = _state(cfg, "infected.json")
    detects = _version(signatures) >= _version(cfg["worm"]["signatures_version"])
    infected = marker.exists() and detects
    result = {"host": cfg["host"], "signatures": signatures, "infected": infected, "cleaned": False}
    if infected and "--clean" in args:
        pid = worm_running(cfg)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        marker.unlink(missing_ok=True)
        append_jsonl(Path(cfg["av_log"]), {"time": now_iso(), "host": cfg["host"], "address": cfg["address"],
                                           "signature": cfg["worm"]["signature"], "action": "cleaned",
                                           "product": "irm-lab-av"})
        result.update(infected=False, cleaned=True)
    print(json.dumps(result, sort_keys=True))
    return 1 if result["infected"] else 0


def tool_check(cfg: dict[str, Any], args: list[str]) -> int:
    """A scanner's safe check of this host's own vulnerable service: 0 not vulnerable, 1 vulnerable."""
    if not cfg["vulnerable"]:
        print("not vulnerable: no vulnerable service on this host")
        return 0
    answers = []
    for port in cfg["worm"]["ports"]:
        try:
            with socket.create_connection((cfg["address"], port), timeout=2) as sock:
                sock.sendall(CHECK_MAGIC + b"\n")
                answers.append(f"{port}:{sock.recv(64).decode(errors='replace').strip() or 'no-answer'}")
        except OSError as exc:
            answers.append(f"{port}:error:{exc.__class__.__name__}")
    print(" ".join(answers))
    return 0 if all(a.endswith(":PATCHED") for a in answers) else 1


def tool_handfix(cfg: dict[str, Any], args: list[str]) -> int:
    """What a technician does at the console: stop the worm and its watchdog, remove the infection
    marker, install the fixed package."""
    done = []
    for pid in (guard_running(cfg), worm_running(cfg)):
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            done.append(f"killed {pid}")
    deadline = time.monotonic() + 5
    while (guard_running(cfg) or worm_running(cfg)) and time.monotonic() < deadline:
        time.sleep(0.05)
    marker = _state(cfg, "infected.json")
    if marker.exists():
        marker.unlink()
        done.append("removed the infection marker")
    pkg = cfg["worm"]["package"]
    rc = tool_pkg(cfg, ["install", f"{pkg['name']}={pkg['fixed_version']}"])
    print("; ".join(done) or "nothing to remove")
    return rc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orchestrator.lab.agent")
    parser.add_argument("--config", required=True)
    parser.add_argument("command", choices=["run", "worm", "guard", "seed", "pkg", "av", "check", "handfix"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if args.command in ("pkg", "av", "check", "handfix"):
        if not in_lab_namespace(cfg):
            sys.exit(f"refusing to run: not inside lab namespace {cfg['netns']}")
        tools = {"pkg": tool_pkg, "av": tool_av, "check": tool_check, "handfix": tool_handfix}
        sys.exit(tools[args.command](cfg, list(args.args)))
    {"run": run_services, "worm": run_worm, "guard": run_guard, "seed": seed}[args.command](cfg)


if __name__ == "__main__":
    main()
