"""Ansible reaches every lab host over real SSH; the baseline connectivity matrix passes real TCP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from orchestrator.core import routing, runner, stream
from orchestrator.core.inventory.load import load_inventory
from orchestrator.lab import traffic
from tests.conftest import irm

pytestmark = pytest.mark.lab


class Recorder:
    def __init__(self) -> None:
        self.tasks: list[str] = []
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: stream.Event) -> None:
        if isinstance(event, stream.TaskStarted):
            self.tasks.append(event.task)
        elif isinstance(event, stream.HostReported):
            self.events.append((event.result.host, event.event))


def test_runner_adapter_reaches_every_host_over_ssh(lab: Path) -> None:
    inv = load_inventory(lab)
    rec = Recorder()
    # every host, each from where it is managed (subsidiary-z's from its execution node z-node)
    result = routing.route(inv)("reach", lab, events=stream.EventStream([rec]),
                                extravars={"irm_targets": ",".join(h.name for h in inv.managed_hosts)})
    assert result.succeeded, result
    assert set(result.hosts) == {h.name for h in inv.managed_hosts}
    assert all(h.ok == 1 and h.status == "ok" for h in result.hosts.values())
    assert rec.tasks == ["Check that the host answers over its management connection",
                         "Check that the IOS boundary answers over its management connection"]
    # each host answers one of the two tasks (ping, or show clock on the IOS router) and skips the other
    answered = sorted(h for h, e in rec.events if "skipped" not in e)
    assert answered == sorted(h.name for h in inv.managed_hosts), rec.events


def test_runner_adapter_reports_an_unreachable_host(lab: Path) -> None:
    """The same check fails when a host's sshd is gone: the reach test above can fail."""
    inv = load_inventory(lab)
    labdir = Path(inv.hosts["x-ws22"].state_dir) / "lab"
    # stop the listener and every session it serves (Ansible may hold a persistent master connection)
    for pid in subprocess.run(["ip", "netns", "pids", "irmlab-x-ws22"], capture_output=True, text=True,
                              check=True).stdout.split():
        if Path(f"/proc/{pid}/comm").read_text().startswith("sshd"):
            os.kill(int(pid), signal.SIGTERM)
    try:
        result = runner.run_playbook("reach", lab, limit="x-ws22,x-ws21")
        assert not result.succeeded
        assert result.failed_hosts == ["x-ws22"]
        assert result.hosts["x-ws22"].status == "unreachable"
        assert result.hosts["x-ws21"].status == "ok"
        cli = irm("lab", "reach")
        assert cli.returncode == 1
        assert "22 of 23 hosts answered over SSH" in cli.stdout
        assert cli.stderr.startswith("x-ws22: ")
    finally:
        subprocess.run(["ip", "netns", "exec", "irmlab-x-ws22", "/usr/sbin/sshd", "-f", str(labdir / "sshd_config"),
                        "-E", str(labdir / "sshd.log")], check=True)


def test_check_mode_runs_through_the_adapter(lab: Path) -> None:
    result = runner.run_playbook("reach", lab, check=True, limit="core-rtr")
    assert result.check and result.succeeded and list(result.hosts) == ["core-rtr"]


def test_baseline_connectivity_matrix(lab: Path) -> None:
    inv = load_inventory(lab)
    probes = traffic.baseline_probes(inv)
    kinds = {(inv.hosts[p.source].kind, inv.hosts[p.target].kind, p.service) for p in probes}
    assert ("soc", "gateway", "ssh") in kinds and ("area", "area", "ssh") in kinds
    assert ("area", "area", "erp") in kinds and ("area", "internet", "web") in kinds
    results = traffic.run_probes(inv, probes)
    closed = [r for r in results if not r.open]
    assert not closed, closed[:5]
    # host to host across areas, area to internet, SOC to every SSH, LAN to the ERP
    assert any(r.probe.source == "x-lt1" and r.probe.target == "hq-ws2" for r in results)
    assert any(r.probe.source == "x-ws21" and r.probe.target == "inet-web" for r in results)
    # the SOC reaches every host's SSH but subsidiary-z's two behind its node, which reaches them
    assert sum(1 for r in results if r.probe.source == "soc-console") == 21
    from_node = {r.probe.target for r in results if r.probe.source == "z-node" and r.probe.port == 22}
    assert from_node >= {"z-ws11", "z-ws21"}
    assert sum(1 for r in results if r.probe.service == "erp") == 15


def test_probes_see_closed_ports_and_blocked_paths(lab: Path) -> None:
    """Negative controls: a probe reports a closed port, and a path dropped by nftables times out."""
    inv = load_inventory(lab)
    ws = inv.hosts["x-ws11"]
    erp = inv.hosts["hq-erp"]
    probes = [traffic.Probe(source="x-ws11", target="hq-erp", address=str(erp.address), port=9, service="none"),
              traffic.Probe(source="x-ws11", target="hq-erp", address=str(erp.address), port=8069, service="erp")]
    first = traffic.run_probes(inv, probes, timeout=0.5)
    assert [r.outcome for r in first] == ["refused", "open"]
    # a drop rule on the hq gateway, then the ERP no longer answers x-ws11
    ruleset = ("table inet irmtest {\n chain forward {\n  type filter hook forward priority filter; policy accept;\n"
               f"  ip saddr {ws.address} ip daddr {erp.address} tcp dport 8069 drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", "irmlab-gw-hq", "nft", "-f", "-"], input=ruleset, text=True, check=True)
    try:
        second = traffic.run_probes(inv, probes[1:], timeout=0.5)
        assert [r.outcome for r in second] == ["timeout"]
    finally:
        subprocess.run(["ip", "netns", "exec", "irmlab-gw-hq", "nft", "delete", "table", "inet", "irmtest"], check=True)
    assert traffic.run_probes(inv, probes[1:], timeout=0.5)[0].open


def test_matrix_cli(lab: Path) -> None:
    proc = irm("lab", "matrix", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(r["outcome"] == "open" for r in rows)
