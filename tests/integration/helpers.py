"""What a lab leaves on the machine, looked up independently of the lab builder's own bookkeeping."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.inventory import Inventory


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
    """PIDs the lab wrote down (sshd, services, worms) while it was up."""
    pids = []
    for host in inv.managed_hosts:
        for f in ("lab/sshd.pid", "lab/agent.pid", "worm.pid", "guard.pid"):
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
