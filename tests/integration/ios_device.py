"""The emulated IOS device for the lab tests: one device in a namespace of its own (its
GigabitEthernet0/1 is the namespace's loopback), reached over real SSH on 127.0.0.1:2222 inside it, with
one emulated minute lasting 4 s unless the test module says otherwise; and the ways the tests talk to it
(OpenSSH, netmiko)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core import ios_readback
from orchestrator.lab.ios_cli import Config, Interface
from orchestrator.lab.ios_server import save_config
from tests.conftest import ROOT
from tests.integration.lab_tools import wait_for

PORT = 2222


@pytest.fixture()
def device(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, Path]]:
    """The device; a test module's ``IOS_MINUTE`` sets how many seconds one emulated minute lasts (4)."""
    ns = f"irmtest-ios-{os.getpid()}"
    state = tmp_path / "state"
    state.mkdir()
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    save_config(state / "config.json", Config(hostname="gw-ios", archive_path="flash:archive", interfaces={
        "GigabitEthernet0/0": Interface("GigabitEthernet0/0"), "GigabitEthernet0/1": Interface("GigabitEthernet0/1")}))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    minute = str(getattr(request.module, "IOS_MINUTE", 4))
    server = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "orchestrator.lab.ios_server", "--state", str(state),
             "--listen", f"127.0.0.1:{PORT}", "--authorized-key", f"{key}.pub", "--minute", minute,
             "--interface", "GigabitEthernet0/1=lo"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", f"ss -ltn | grep -q :{PORT}"],
                                        check=False).returncode == 0, 30, "the emulated device listening")
        yield ns, state, key
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def nft(ns: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "ios"], capture_output=True,
                          text=True, check=False)
    return proc.stdout


def ssh(ns: str, key: Path, command: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "ssh", "-p", str(PORT), "-i", str(key), "-o", "BatchMode=yes",
                           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                           "LogLevel=ERROR", "irm@127.0.0.1", command], capture_output=True, text=True, timeout=30,
                          check=True).stdout


READBACK = r'''
import json, sys
from orchestrator.core import ios_readback
live = ios_readback.read("127.0.0.1", port=int(sys.argv[2]), username="irm", key_file=sys.argv[1])
print(json.dumps({"acls": live.acls, "bindings": live.bindings, "routed": sorted(live.routed),
                  "pending": live.pending}))
'''


def shell(ns: str, key: Path, *lines: str) -> str:
    script = "\n".join(["enable", *lines, "exit", ""])
    return subprocess.run(["ip", "netns", "exec", ns, "ssh", "-tt", "-p", str(PORT), "-i", str(key), "-o",
                           "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "irm@127.0.0.1"], input=script, capture_output=True, text=True,
                          timeout=60, check=True).stdout


def readback(ns: str, key: Path) -> ios_readback.IosLive:
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", READBACK, str(key), str(PORT)],
                          capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    data = json.loads(proc.stdout)
    return ios_readback.IosLive(acls={n: [(s, t) for s, t in e] for n, e in data["acls"].items()},
                                bindings=data["bindings"], pending=data["pending"], routed=set(data["routed"]))


