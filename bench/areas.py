"""Benchmark: time until the last infected area's first cut, for 1, 3 and 6 areas, measured in one run.

    .venv/bin/python bench/areas.py [K ...]        (default: 1 3 6; needs root, builds labs)

The lab (written here): K areas `a1`..`aK`, each behind its own gateway with two sub-areas of two hosts,
plus core, edge and an internet host, in 198.19.128.0/17 (lab name irmareas). For each K, on a freshly
built lab:
  together    one `irm contain --area a1 ... --area aK --yes --no-loop`: every first cut is one play
  one by one  K `irm contain --area aI --yes --no-loop` run one after the other (what an operator did
              before several areas could be given), for K > 1
The time until an area's first cut runs from the start of the first command to the moment the edge's
new ruleset took effect (journaled by the irm_nft module). Prints the time until the last area's first
cut and its ratio to one area's; asserts nothing (the target is in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench.make_inventory import frame, lab_vars  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}


def inventory(k: int) -> dict[str, object]:
    gateways = {f"gw-a{i}": {"ansible_host": f"198.19.128.{10 + 4 * i}", "irm_uplink": f"198.19.128.{10 + 4 * i}/30"}
                for i in range(1, k + 1)}
    areas = {}
    for i in range(1, k + 1):
        areas[f"area_a{i}"] = {"vars": {"irm_gateway": f"gw-a{i}"}, "children": {
            f"subarea_a{i}__office_{s}": {
                "vars": {"irm_prefix": f"198.19.{140 + 2 * i + s - 1}.0/24"},
                "hosts": {f"a{i}-w{s}{h}": {"ansible_host": f"198.19.{140 + 2 * i + s - 1}.{10 + h}"}
                          for h in range(1, 3)}}
            for s in (1, 2)}}
    return {"all": {
        "vars": lab_vars("irmareas"),
        "children": {**frame("a", gateways), **areas},
    }}


def irm(*args: str) -> None:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def last_cut(inv_dir: Path, work: Path, k: int, together: bool) -> float:
    """Seconds from the first command's start to the last area's first cut, on a fresh lab."""
    subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV, check=False)
    irm("lab", "up", "-i", str(inv_dir))
    journal = work / f"journal-{k}-{together}.db"
    irm("incident", "open", "--worm", "Bench.Worm", "--vector", "tcp/4445", "--journal", str(journal))
    names = [f"a{i}" for i in range(1, k + 1)]
    common = ["--yes", "--no-loop", "--confirm-timeout", "300", "--journal", str(journal), "-i", str(inv_dir)]
    started = datetime.now(UTC)
    if together:
        irm("contain", *[a for n in names for a in ("--area", n)], *common)
    else:
        for n in names:
            irm("contain", "--area", n, *common)
    with Journal.reader(journal) as j:
        cuts = []
        for n in names:
            row = next(s for s in j.stages.of(1, n) if s.name == "internet_cut" and s.state == "done")
            cuts.append(datetime.fromisoformat(str(row.detail["first_applied_at"])))
    return (max(cuts) - started).total_seconds()


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [1, 3, 6]
    work = Path(tempfile.mkdtemp(prefix="irm-bench-areas-"))
    inv_dir = work / "inventory"
    inv_dir.mkdir()
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(max(sizes)), sort_keys=False))
    rows: list[tuple[int, float, float | None]] = []
    try:
        for k in sizes:
            t0 = time.monotonic()
            together = last_cut(inv_dir, work, k, True)
            alone = last_cut(inv_dir, work, k, False) if k > 1 else None
            rows.append((k, together, alone))
            print(f"  {k} area(s) measured in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    finally:
        subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV,
                       check=False)
        shutil.rmtree(work, ignore_errors=True)
    one = next((t for k, t, _ in rows if k == 1), rows[0][1])
    lines = ["| infected areas | last area's first cut, together | ratio to one area | one command per area |",
             "|---|---|---|---|"]
    for k, together, alone in rows:
        lines.append(f"| {k} | {together:.1f} s | {together / one:.2f}x | {f'{alone:.1f} s' if alone else '-'} |")
    publish(markdown, "areas", lines)


if __name__ == "__main__":
    main()
