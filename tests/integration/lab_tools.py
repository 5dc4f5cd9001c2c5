"""The one helper module of the lab tests: reading the lab's real state back (rulesets from every namespace,
infections, worm logs, the journal through its API), waiting for a condition, what a lab leaves on the
machine (looked up independently of the lab builder's own bookkeeping), and lab approvals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import EventRow, Journal, Stage
from orchestrator.lab import traffic
from tests.conftest import module_util


def rulesets(inv: Inventory) -> dict[str, str]:
    """`nft -s list ruleset` read back from every lab host (-s: a counter without the traffic it saw)."""
    assert inv.lab is not None
    out = {}
    for host in inv.managed_hosts:
        out[host.name] = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host.name}", "nft", "-s",
                                         "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    return out


def live_fingerprint(inv: Inventory, host: str) -> str:
    """The fingerprint of what the host's irm table enforces, from `nft -j list table inet irm` in its
    namespace (``absent`` when there is none), computed by the collection's own canonical form."""
    assert inv.lab is not None
    proc = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host}", "nft", "-j", "list", "table", "inet",
                           "irm"], capture_output=True, text=True)
    if proc.returncode != 0:
        return "absent"
    nft_host = module_util("irm_nft_host")
    return str(nft_host.fingerprint(nft_host.canonical_live(json.loads(proc.stdout))))


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def infected(inv: Inventory) -> dict[str, dict[str, Any]]:
    found = {}
    for host in inv.managed_hosts:
        marker = Path(host.state_dir) / "infected.json"
        if marker.exists():
            found[host.name] = json.loads(marker.read_text())
    return found


def worm_attempts(inv: Inventory, since: datetime, targets: set[str]) -> list[dict[str, Any]]:
    """Every attempt any worm made at ``targets`` after ``since``, from the worms' own logs."""
    attempts = []
    for host in inv.managed_hosts:
        for rec in jsonl(Path(host.state_dir) / "worm.log"):
            if (rec.get("event") == "attempt" and rec.get("target") in targets
                    and datetime.fromisoformat(rec["time"]) > since):
                attempts.append({**rec, "from": host.name})
    return attempts


def set_patched(inv: Inventory, hosts: list[str], patched: bool) -> None:
    for name in hosts:
        marker = Path(inv.hosts[name].state_dir) / "patched"
        if patched:
            marker.write_text("test\n")
        else:
            marker.unlink(missing_ok=True)


def stages(journal: Path, phase: str | None = None) -> list[Stage]:
    """Every stage row of the journal (all incidents, in order), read through the journal's API
    (read-only: safe while an irm process writes it). None yet: []."""
    try:
        j = Journal.reader(journal)
    except UserError:  # not created yet, or not migrated yet by the irm being started
        return []
    try:
        return [st for inc in j.incidents.all() for st in j.stages.of(inc.id) if phase is None or st.phase == phase]
    finally:
        j.close()


def events(journal: Path, kind: str | None = None) -> list[EventRow]:
    """Every event of the journal (all incidents, in time order), or those of one kind."""
    with closing(Journal.reader(journal)) as j:
        return [e for inc in j.incidents.all() for e in j.timeline.of(inc.id) if kind is None or e["kind"] == kind]


def stage_states(journal: Path) -> dict[str, str]:
    return {st.name: st.state for st in stages(journal) if not st.check_mode}


def matrix(inv: Inventory, probes: list[traffic.Probe] | None = None) -> dict[tuple[str, str, int], str]:
    results = traffic.run_probes(inv, probes or traffic.baseline_probes(inv), timeout=0.7)
    return {(r.probe.source, r.probe.target, r.probe.port): r.outcome for r in results}


def probe(inv: Inventory, source: str, target: str, port: int) -> traffic.Probe:
    return traffic.Probe(source=source, target=target, address=str(inv.hosts[target].address), port=port,
                         service=str(port))

def namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(prefix))


def root_links(name_prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(name_prefix)]


def pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
    except OSError:
        return False
    return state != "Z"


def recorded_pids(inv: Inventory) -> list[int]:
    """PIDs the lab wrote down (sshd, services, emulated IOS devices, worms) while it was up."""
    pids = []
    for host in inv.managed_hosts:
        for f in ("lab/sshd.pid", "lab/agent.pid", "lab/ios.pid", "worm.pid", "guard.pid"):
            path = Path(host.state_dir) / f
            if path.exists():
                pids.append(int(path.read_text().split()[0]))
    return pids


@dataclass
class Traces:
    namespaces: list[str]
    links: list[str]
    processes: list[int]
    state_dir: bool

    @property
    def empty(self) -> bool:
        return not (self.namespaces or self.links or self.processes or self.state_dir)


def traces(inv: Inventory, watched_pids: list[int] | None = None) -> Traces:
    assert inv.lab is not None
    procs = set(pids_mentioning(inv.lab.state_dir)) | {p for p in (watched_pids or []) if alive(p)}
    return Traces(
        namespaces=namespaces(f"{inv.lab.name}-"),
        links=root_links(f"{inv.lab.name}-"),
        processes=sorted(procs),
        state_dir=Path(inv.lab.state_dir).exists(),
    )


def approver_key(inv: Inventory, name: str = "ciso") -> Path:
    """The private key `irm lab up` made for a lab approver (beside the public key the inventory names)."""
    approver = next(a for a in inv.approvers if a.name == name)
    assert approver.key_file
    return Path(approver.key_file).with_suffix("")


def approve_args(inv: Inventory, area: str = "subsidiary-x", name: str = "ciso",
                 reason: str = "remediation verified") -> list[str]:
    """`irm approve` arguments signing an approval with a lab approver's key."""
    return ["approve", "--area", area, "--key", str(approver_key(inv, name)), "--reason", reason]


def stop_sshd(inv: Inventory, host: str) -> list[int]:
    """Kill every sshd of one lab host (by the PIDs its namespace holds): irm no longer reaches it, while
    its other processes (a worm) go on. The lab's next build starts its sshd again."""
    assert inv.lab is not None
    ns = f"{inv.lab.name}-{host}"
    pids = [int(p) for p in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                           check=True).stdout.split()]
    killed = []
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "sshd" or comm.startswith("sshd-"):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
