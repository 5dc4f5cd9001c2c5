"""Benchmark: what the warm path's connection reuse saves a run's later stages, against new connections.

    .venv/bin/python bench/connections.py [N...]   (default 110 250; needs root, builds labs; about 3 minutes)

For each N, on a fresh lab whose area holds N hosts (bench/make_inventory.py), every area host at once:
  new        `ssh HOST true` over a new SSH connection each (the bare floor of reaching every host);
  first      the warm path's read of each host's irm table (``WarmPath.read``: one remote process running
             the host code, as a stage's apply does) over the run's own connections: the first call to a
             host opens its connection and leaves it open for the run (ControlPersist, in the run's private
             directory), as a containment's first host-level stage does;
  reused     the same read again in the same run, through the connections the first one left: what a later
             stage of the run (a sub-area's re-apply, the retry of unreached hosts) pays.
Each is timed (wall) with the machine's CPU time over it (from /proc/stat: on the lab every host shares the
controller's cores, so CPU is what the stage costs); the reads must succeed on every host or the bench
stops. Prints the ratios; asserts nothing about time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"

from bench.containment import fresh_lab  # noqa: E402
from bench.make_inventory import inventory  # noqa: E402
from orchestrator.core import runner, warm_resolve  # noqa: E402
from orchestrator.core.inventory.load import load_inventory  # noqa: E402
from orchestrator.core.warm import WarmPath  # noqa: E402


def cpu() -> float:
    """The machine's CPU seconds so far (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(x) for x in fields[:3] + fields[5:8]) / os.sysconf("SC_CLK_TCK")


def measured(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, machine CPU seconds, what ``fn(*args)`` returned)."""
    time.sleep(1.0)  # what came before settles
    c0, t0 = cpu(), time.monotonic()
    out = fn(*args)
    return time.monotonic() - t0, cpu() - c0, out


def new_connections(inv_dir: Path, hosts: list[str]) -> None:
    inv = load_inventory(inv_dir)
    assert inv.lab is not None
    ssh_dir = Path(inv.lab.state_dir) / "ssh"
    procs = [subprocess.Popen(
        ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "ControlMaster=no", "-o", "BatchMode=yes",
         f"root@{inv.hosts[h].address}", "true"], stdin=subprocess.DEVNULL) for h in hosts]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("new connections: ssh failed")


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [110, 250]
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"irm-bench-conn-{n}-"))
        inv_dir = work / "inv"
        inv_dir.mkdir()
        (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(n), sort_keys=False))
        os.environ["IRM_CACHE_DIR"] = str(work / "cache")
        try:
            fresh_lab(inv_dir)
            inv = load_inventory(inv_dir)
            hosts = list(inv.area("bench-x").hosts)
            new = measured(new_connections, inv_dir, hosts)
            with WarmPath(inv_dir, hosts, frozenset(), runner.run_playbook, held=[],
                          resolve=warm_resolve.resolve) as warm:
                warm.prepare()
                if sorted(warm.ready) != sorted(hosts):
                    raise SystemExit(f"not prepared: {warm.refused}")
                first = measured(warm.read, hosts)
                reused = measured(warm.read, hosts)
            failed = {h: r for res in (first[2], reused[2]) for h, r in res.items() if r.get("failed")}
            if failed:
                raise SystemExit(f"reads failed: {json.dumps(failed)[:2000]}")
        finally:
            subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, check=False)
            shutil.rmtree(work, ignore_errors=True)
        row: dict[str, float] = {"hosts": n, "new_s": new[0], "new_cpu": new[1], "first_s": first[0],
                                 "first_cpu": first[1], "reused_s": reused[0], "reused_cpu": reused[1]}
        rows.append(row)
        print(json.dumps({k: round(v, 2) for k, v in row.items()}), flush=True)
    lines = ["| area hosts, every one at once | `ssh HOST true`, new connections | warm path read, first call "
             "(opens the run's connection) | warm path read, reused connection | first / reused |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['hosts']} | {r['new_s']:.2f} s ({r['new_cpu']:.1f} s CPU) "
                     f"| {r['first_s']:.2f} s ({r['first_cpu']:.1f} s CPU) "
                     f"| {r['reused_s']:.2f} s ({r['reused_cpu']:.1f} s CPU) "
                     f"| {r['first_s'] / r['reused_s']:.1f}x ({r['first_cpu'] / r['reused_cpu']:.1f}x CPU) |")
    publish(markdown, "connections", lines)


if __name__ == "__main__":
    main()
