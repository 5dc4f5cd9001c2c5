"""Benchmark: N areas contained at once, each area's plays on its own execution node, against the
controller alone running every play (N = 1, 3, 6 by default), measured in one run.

    .venv/bin/python bench/nodes.py [N ...] [--hosts H]      (needs root, builds labs)

The lab (written here, lab name irmnodes, 198.19.128.0/17): N areas `a1`..`aN`, each behind its own
gateway with two sub-areas; the first holds the area's jump host `aI-node` and the others H - 1 hosts
(default H = 8, the node included). Two inventories of the same topology: in one, each area names its
jump host as its execution node (the SOC then has no route to the area but to the node); in the other,
no node: the controller runs every play, the jump host is one more area host. For each N, on a freshly
built lab each time: the wall-clock time of one `irm contain --area a1 ... --area aN --yes --no-loop`,
and the time until the last area's vectors stage (the host-level work, the part the nodes run) ended.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench.make_inventory import frame, lab_vars  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}


def inventory(n: int, hosts: int, nodes: bool) -> dict[str, object]:
    gateways = {f"gw-a{i}": {"ansible_host": f"198.19.128.{10 + 4 * i}", "irm_uplink": f"198.19.128.{10 + 4 * i}/30"}
                for i in range(1, n + 1)}
    areas: dict[str, object] = {}
    for i in range(1, n + 1):
        first = 140 + 2 * i
        office_1 = {f"a{i}-node": {"ansible_host": f"198.19.{first}.5"}}
        rest = [f"a{i}-w{k:02d}" for k in range(1, hosts)]
        half = len(rest) // 2
        office_1 |= {h: {"ansible_host": f"198.19.{first}.{10 + k}"} for k, h in enumerate(rest[:half])}
        office_2 = {h: {"ansible_host": f"198.19.{first + 1}.{10 + k}"} for k, h in enumerate(rest[half:])}
        group: dict[str, object] = {"irm_gateway": f"gw-a{i}"}
        if nodes:
            group["irm_execution_node"] = f"a{i}-node"
        areas[f"area_a{i}"] = {"vars": group, "children": {
            f"subarea_a{i}__office_1": {"vars": {"irm_prefix": f"198.19.{first}.0/24"}, "hosts": office_1},
            f"subarea_a{i}__office_2": {"vars": {"irm_prefix": f"198.19.{first + 1}.0/24"}, "hosts": office_2}}}
    children: dict[str, object] = {**frame("n", gateways), **areas}
    if nodes:
        children["execution_nodes"] = {"hosts": {f"a{i}-node": None for i in range(1, n + 1)}}
    return {"all": {"vars": lab_vars("irmnodes"), "children": children}}


def irm(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def contain(inv_dir: Path, work: Path, n: int, tag: str) -> tuple[float, float]:
    """(wall-clock seconds of the containment command, seconds until the last area's vectors stage
    ended), on a freshly built lab."""
    subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV, check=False)
    irm("lab", "up", "-i", str(inv_dir))
    try:
        journal = work / f"journal-{n}-{tag}.db"
        irm("incident", "open", "--worm", "Bench.Worm", "--vector", "tcp/4445", "--journal", str(journal))
        names = [f"a{i}" for i in range(1, n + 1)]
        started = time.time()
        irm("contain", *[a for name in names for a in ("--area", name)], "--yes", "--no-loop",
            "--confirm-timeout", "300", "--journal", str(journal), "-i", str(inv_dir))
        wall = time.time() - started
        with Journal.reader(journal) as j:
            ends = [datetime.fromisoformat(str(s.ended_at)).timestamp() for name in names for s in j.stages.of(1, name)
                    if s.name == "vectors" and s.state == "done" and not s.check_mode]
        return wall, max(ends) - started
    finally:
        subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV,
                       check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[1, 3, 6])
    parser.add_argument("--hosts", type=int, default=8, help="hosts per area, its jump host included")
    parser.add_argument("--markdown", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irm-bench-nodes-"))
    rows = []
    try:
        for n in args.sizes:
            measured = {}
            for tag, nodes in (("alone", False), ("nodes", True)):
                inv_dir = work / f"inventory-{n}-{tag}"
                inv_dir.mkdir()
                (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(n, args.hosts, nodes), sort_keys=False))
                t0 = time.monotonic()
                measured[tag] = contain(inv_dir, work, n, tag)
                print(f"  {n} area(s), {tag}: measured in {time.monotonic() - t0:.0f}s", file=sys.stderr)
            rows.append((n, measured["alone"], measured["nodes"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from bench.markdown import publish

    lines = [f"| areas (x {args.hosts} hosts) | controller alone: contain | its vectors stage ends | "
             "with a node per area: contain | its vectors stage ends | nodes / alone (contain) |",
             "|---|---|---|---|---|---|"]
    for n, (a_wall, a_vec), (n_wall, n_vec) in rows:
        lines.append(f"| {n} | {a_wall:.1f} s | {a_vec:.1f} s | {n_wall:.1f} s | {n_vec:.1f} s "
                     f"| {n_wall / a_wall:.2f}x |")
    publish(args.markdown, "nodes", lines)


if __name__ == "__main__":
    main()
