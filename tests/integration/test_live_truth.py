"""Holes that a contained area must not keep, injected for real and checked by traffic: an isolated,
rooted host opening a new connection to the SOC from its own management port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import irm
from tests.integration.test_containment_safety import incident

pytestmark = pytest.mark.lab

_CONNECT = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.settimeout(2)
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    print("open")
except OSError as exc:
    print("timeout" if isinstance(exc, TimeoutError) else f"error {exc}")
"""


def _connect_from(inv: Inventory, host: str, sport: int, address: str, port: int) -> str:
    """A new TCP connection from ``host`` with source port ``sport``: open, timeout or error."""
    assert inv.lab is not None
    proc = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host}", sys.executable, "-c", _CONNECT,
                           str(sport), address, str(port)], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() or proc.stderr.strip()


class _Listener:
    """A TCP listener on the SOC's lab address (the root namespace), accepting and closing."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def _stop_sshd(inv: Inventory, host: str) -> None:
    """The host's sshd stopped (by the PID its own pidfile names), so that port 22 is free to bind."""
    from orchestrator.lab.builder import _lab_dir

    pid = int((_lab_dir(inv.hosts[host]) / "sshd.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)


def test_an_isolated_host_cannot_open_a_connection_to_the_soc_from_its_ssh_port(fresh_lab: Path,
                                                                               tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    assert inv.soc is not None
    journal = incident(tmp_path)
    listener = _Listener(str(inv.soc.address))
    try:
        # before containment: the connection opens (the test can see a hole when there is one)
        assert _connect_from(inv, "x-ws11", 40022, str(inv.soc.address), listener.port) == "open"
        proc = irm("contain", "--area", "subsidiary-x", "--yes", "--no-loop", "--journal", str(journal),
                   "--confirm-timeout", "10", timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # management (SSH replies) still confirmed
        _stop_sshd(inv, "x-ws11")
        _stop_sshd(inv, "x-ws21")
        # the rooted host's new connections from its management port: a bare SYN, dropped at the host and
        # at the gateway; from any other port too
        assert _connect_from(inv, "x-ws11", 22, str(inv.soc.address), listener.port) == "timeout"
        assert _connect_from(inv, "x-ws21", 22, str(inv.soc.address), listener.port) == "timeout"
        assert _connect_from(inv, "x-ws11", 40023, str(inv.soc.address), listener.port) == "timeout"
    finally:
        listener.close()


def test_a_second_incident_on_the_same_area_never_reopens_the_first_ones_vector(fresh_lab: Path,
                                                                               tmp_path: Path) -> None:
    """Incident 1 (tcp/4445) and incident 2 (tcp/1139) both contain subsidiary-x: every host blocks both
    vectors (by traffic, between two hosts of one sub-area, where only the host-level rules act), both
    incidents verify, status names both, and incident 1 cannot be closed while it holds the area."""
    from orchestrator.lab import traffic

    inv = load_inventory(fresh_lab)
    journal = tmp_path / "journal.db"
    for vector in ("tcp/4445", "tcp/1139"):
        irm("incident", "open", "--worm", f"W-{vector}", "--vector", vector, "--journal", str(journal), check=True)
    probes = [traffic.Probe(source="x-ws11", target="x-ws12", address=str(inv.hosts["x-ws12"].address), port=port,
                            service=str(port)) for port in (4445, 1139)]

    def outcome() -> dict[int, str]:
        return {r.probe.port: r.outcome for r in traffic.run_probes(inv, probes, timeout=1.0)}

    assert outcome() == {4445: "open", 1139: "refused"}  # the lab's vulnerable service; nothing on 1139
    for number in ("1", "2"):
        proc = irm("contain", "--area", "subsidiary-x", "--yes", "--no-loop", "--incident", number, "--journal",
                   str(journal), "--confirm-timeout", "10", timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert outcome()[4445] == "timeout"  # incident 2's apply kept incident 1's vector blocked
    assert outcome() == {4445: "timeout", 1139: "timeout"}
    for number in ("1", "2"):
        verify = irm("status", "--verify", "--incident", number, "--journal", str(journal))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert f"also open: incident {3 - int(number)} " in verify.stdout
    refused = irm("incident", "close", "1", "--journal", str(journal))
    assert refused.returncode != 0
    assert "incident 1 still holds subsidiary-x (isolated, vectors blocked)" in refused.stderr


@pytest.mark.campaign  # bench/lab_campaign.sh; make test keeps a sample of the campaign
def test_two_journals_never_overwrite_each_other_in_silence(fresh_lab: Path, tmp_path: Path) -> None:
    """A second SOC machine (its own journal) contains the area the first one holds: every apply names the
    table it expects to replace, the hosts refuse, and the first journal's cuts stay (by traffic); the
    operator may take over explicitly, journaled."""
    from orchestrator.lab import traffic

    inv = load_inventory(fresh_lab)
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    irm("incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal", str(first), check=True)
    irm("incident", "open", "--worm", "W", "--vector", "tcp/1139", "--journal", str(second), check=True)
    probes = [traffic.Probe(source="x-ws11", target="x-ws12", address=str(inv.hosts["x-ws12"].address), port=port,
                            service=str(port)) for port in (4445, 1139)]

    def outcome() -> dict[int, str]:
        return {r.probe.port: r.outcome for r in traffic.run_probes(inv, probes, timeout=1.0)}

    def contain(journal: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return irm("contain", "--area", "subsidiary-x", "--yes", "--no-loop", "--journal", str(journal),
                   "--confirm-timeout", "5", *extra, timeout=600)

    assert contain(first).returncode == 0
    assert outcome() == {4445: "timeout", 1139: "refused"}
    refused = contain(second)
    assert refused.returncode != 0, refused.stdout
    said = " ".join(refused.stderr.split())  # the one error line, as wrapped on the terminal
    assert re.search(r"gw-x: (Apply the whole irm table for the policy, commit-confirmed|irm\.response\.irm_nft "
                     r"\(over a held SSH connection\)): compare-and-swap refused: the live table is irm-nft-",
                     said), said
    assert "not one this run expects to replace (absent" in said and "another journal or SOC machine" in said
    assert outcome() == {4445: "timeout", 1139: "refused"}  # the first journal's tables, untouched
    assert irm("status", "--verify", "--journal", str(first)).returncode == 0
    taken = contain(second, "--take-over")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert outcome() == {4445: "open", 1139: "timeout"}  # now the second journal's (its own vector)
    from contextlib import closing

    from orchestrator.core.journal import Journal

    with closing(Journal.reader(second)) as j:
        started = [e["detail"] for e in j.timeline.of(1) if e["kind"] == "containment_started"]
    assert started[-1]["take_over"] is True
    # the first journal now sees what is live: drift, named
    assert irm("status", "--verify", "--journal", str(first)).returncode == 1
