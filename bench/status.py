"""Benchmark: `irm status` and `irm incident list`, the read-only views, median of repeated runs.

    .venv/bin/python bench/status.py [RUNS]        (default 15; no root, no lab)

A journal is filled by a real containment, remediation and recovery of the lab inventory's area
subsidiary-x driven through the fake playbook runner of the unit tests (every stage, host row and event
a real run writes). Then, in the same run, each command is timed as a new process:
  status           `irm status` (the inventory from its snapshot: no Ansible import)
  status, Ansible  `irm status` with IRM_INVENTORY_SNAPSHOT=0: the inventory loaded through Ansible, as
                   every load did before the snapshot (the baseline)
  incident list    `irm incident list`
  python           `python -c pass`: the interpreter's own start-up, the least any command can take
Prints medians and the ratio of status to its baseline; asserts nothing (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from orchestrator.containment.phase import Containment, ContainRequest  # noqa: E402
from orchestrator.core.incident import IncidentSpec  # noqa: E402
from orchestrator.core.inventory.load import load_inventory  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections  # noqa: E402

INVENTORY = ROOT / "inventories" / "lab"


def _journal(path: Path) -> None:
    inv = load_inventory(INVENTORY).from_soc()  # the fake runner stands in for every node too
    with Journal(path) as j:
        j.incidents.open(IncidentSpec(worm="Bench.Worm", vectors=["tcp/4445"]), "bench")
        for area in inv.areas:
            job = Containment(ContainRequest(inventory=INVENTORY, area=area, operator="bench", loop=False), inv, j,
                              NoDetections(), run=FakeRunner(), probe=FakeProber())
            job.applier.verify_device = lambda host, policy: []  # the IOS gateway read back as planned (no lab)
            job.run()


def _median(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    runs = int(argv[0]) if argv else 15
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.db"
        _journal(journal)
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "IRM_CACHE_DIR": str(Path(tmp) / "cache")}
        irm = [str(BIN / "irm")]
        status = [*irm, "status", "--journal", str(journal), "-i", str(INVENTORY)]
        subprocess.run(status, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)  # takes the snapshot
        results = {
            "status": _median(status, env, runs),
            "status, Ansible": _median(status, {**env, "IRM_INVENTORY_SNAPSHOT": "0"}, runs),
            "incident list": _median([*irm, "incident", "list", "--journal", str(journal)], env, runs),
            "python": _median([sys.executable, "-c", "pass"], env, runs),
        }
    base = results["status"]
    labels = {"status": "`irm status`", "status, Ansible": "`irm status`, inventory through Ansible (baseline)",
              "incident list": "`irm incident list`", "python": "`python -c pass`"}
    lines = [f"| command | median of {runs} | against `irm status` |", "|---|---|---|"]
    lines += [f"| {labels[name]} | {seconds:.3f} s | {seconds / base:.2f}x |" for name, seconds in results.items()]
    publish(markdown, "status", lines)


if __name__ == "__main__":
    main()
