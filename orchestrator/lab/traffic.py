"""Real TCP probes between lab hosts: the connectivity matrix that proves what a posture opens or cuts.

Each source namespace runs one ``orchestrator.lab.probe`` process that tries all its targets at once;
the SOC's probes run here, in the root namespace. Nothing is simulated: a probe is a TCP handshake.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, ConfigDict

from orchestrator.core.inventory import Inventory
from orchestrator.lab import probe as _probe


class Probe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    target: str
    address: str
    port: int
    service: str


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    probe: Probe
    outcome: str  # open | refused | timeout | error

    @property
    def open(self) -> bool:
        return self.outcome == "open"


def management_probes(inv: Inventory) -> list[Probe]:
    """SSH to each managed host from where it is managed: the SOC, or its area's execution node (the SOC
    has no route to the hosts behind one)."""
    soc = inv.soc
    if soc is None:
        return []
    return [Probe(source=(inv.manager_of(h) or soc).name, target=h.name, address=str(h.address), port=22,
                  service="ssh") for h in inv.managed_hosts]


def baseline_probes(inv: Inventory) -> list[Probe]:
    """Every path the topology allows with no containment in place.

    Every managed host's SSH answers from where it is managed (the SOC, or its area's execution node:
    the SOC has no route to the hosts behind one); every area host reaches every other area host (within and
    across sub-areas and areas), every business service declared on area hosts (the ERP), and every
    service on the internet hosts.
    """
    probes = management_probes(inv)
    area_hosts = [h for h in inv.hosts.values() if h.kind == "area"]
    internet_hosts = [h for h in inv.hosts.values() if h.kind == "internet"]
    for src in area_hosts:
        for dst in area_hosts:
            if dst.name == src.name:
                continue
            probes.append(Probe(source=src.name, target=dst.name, address=str(dst.address), port=22, service="ssh"))
            probes += [Probe(source=src.name, target=dst.name, address=str(dst.address), port=s.port,
                             service=s.name) for s in dst.services]
        for dst in internet_hosts:
            probes += [Probe(source=src.name, target=dst.name, address=str(dst.address), port=s.port,
                             service=s.name) for s in dst.services]
    return list(dict.fromkeys(probes))  # a node's management probe is also an area path


def run_probes(inv: Inventory, probes: list[Probe], timeout: float = 1.0) -> list[ProbeResult]:
    assert inv.lab is not None
    lab = inv.lab.name
    by_source: dict[str, list[Probe]] = {}
    for p in probes:
        by_source.setdefault(p.source, []).append(p)

    def run_source(source: str) -> dict[str, str]:
        targets = sorted({f"{p.address}:{p.port}" for p in by_source[source]})
        host = inv.host(source)
        if host.kind == "soc":
            with ThreadPoolExecutor(max_workers=32) as pool:
                return dict(zip(targets, pool.map(lambda t: _probe.probe(t, timeout), targets), strict=True))
        proc = subprocess.run(
            ["ip", "netns", "exec", f"{lab}-{source}", sys.executable, "-m", "orchestrator.lab.probe",
             str(timeout), *targets],
            capture_output=True, text=True, check=False, timeout=timeout * 4 + 30,
        )
        if proc.returncode != 0:
            return dict.fromkeys(targets, "error")
        result: dict[str, str] = json.loads(proc.stdout)
        return result

    sources = sorted(by_source)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = dict(zip(sources, pool.map(run_source, sources), strict=True))
    return [ProbeResult(probe=p, outcome=outcomes[p.source][f"{p.address}:{p.port}"]) for p in probes]


class LabPaths:
    """Recovery's path prober for a lab inventory: the lab's baseline paths, probed with real TCP."""

    def candidates(self, inv: Inventory) -> list[Probe]:
        return baseline_probes(inv)

    def probe(self, inv: Inventory, probes: list[Probe]) -> list[ProbeResult]:
        return run_probes(inv, probes)
