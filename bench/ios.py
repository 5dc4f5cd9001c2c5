"""Benchmark: irm's stages on the emulated IOS boundary gw-y, against a bare netmiko session, in one run.

    .venv/bin/python bench/ios.py [--runs N] [--markdown FILE]     (needs root; builds the shipped lab,
    lab name irmlab: never while make test runs)

For each run (default 3), on a freshly built lab: `irm contain --area subsidiary-y --yes --no-loop`
(the Internet cut at the edge, isolation and the mobile stage at gw-y, the vectors on its 3 hosts), then
the same command again (nothing to change); then the same two commands with `--ios-play` on a lab built
again (gw-y changed by the collection's irm_ios_acl module in a play, the path before the IOS direct
one). Each stage's time is the journal's (its row started to ended, the confirm included); the total is
the command's wall time. The floor, measured in the same
run: one netmiko session to gw-y (log in, enable, `configure terminal`, the isolate stage's access list
under a throwaway name, `end`, the list deleted, log out): what one device round of the same size costs
with nothing checked. Prints the medians and their ratios to the floor; asserts nothing (targets in
docs/benchmarks.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from orchestrator.core.inventory.load import load_inventory  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
LAB = ROOT / "inventories" / "lab"
AREA = "subsidiary-y"


def irm(*args: str, check: bool = True) -> float:
    start = time.monotonic()
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.monotonic() - start


def stage_times(journal: Path, since: int) -> dict[str, float]:
    """Each stage of the area after stage id ``since``: seconds from its row's start to its end."""
    from datetime import datetime

    with closing(Journal.reader(journal)) as j:
        out = {}
        for st in j.stages.of(1, AREA):
            if st.id > since and st.ended_at and not st.check_mode:
                out[st.name] = (datetime.fromisoformat(st.ended_at) - datetime.fromisoformat(st.started_at)
                                ).total_seconds()
        return out


def last_stage(journal: Path) -> int:
    with closing(Journal.reader(journal)) as j:
        return max((st.id for st in j.stages.of(1, AREA)), default=0)


def floor() -> float:
    """One netmiko session sending a list of the isolate stage's size to gw-y, then deleting it."""
    from orchestrator.core import ios_readback
    from orchestrator.core.paths import module_util
    from orchestrator.core.posture import AreaState, policies

    inv = load_inventory(LAB)
    host = inv.hosts["gw-y"]
    render = module_util("irm_ios_render")
    policy = policies(inv, [], {AREA: AreaState(posture="isolated")})["gw-y"].model_dump(mode="json")
    aces = render.render("gw-y", policy)
    assert host.login is not None
    start = time.monotonic()
    conn = ios_readback._connect(str(host.address), host.login.port, host.login.user, host.login.key_file,
                                 host.login.known_hosts, 30)
    try:
        conn.send_config_set(["ip access-list extended BENCH-FLOOR",
                              *[f"{10 * (i + 1)} {a}" for i, a in enumerate(aces)], "exit"])
        elapsed = time.monotonic() - start
        conn.send_config_set(["no ip access-list extended BENCH-FLOOR"])
    finally:
        conn.disconnect()
    return elapsed


@dataclass
class Path_:
    first: dict[str, float]  # stage -> seconds, the first containment
    total: float
    again: dict[str, float]  # stage -> seconds, the same command again (nothing to change)
    total_again: float


@dataclass
class Run:
    direct: Path_  # irm's default: the IOS direct path (core.ios_direct)
    play: Path_  # --ios-play: the irm_ios_acl module in a play over network_cli
    floor: float


def contain_twice(work: Path, n: int, *extra: str) -> Path_:
    irm("lab", "down", "-i", str(LAB), check=False)
    irm("lab", "up", "-i", str(LAB))
    journal = work / f"ios-{n}{'-'.join(extra)}.db"
    irm("incident", "open", "--worm", "bench", "--vector", "tcp/4445", "--journal", str(journal), "-i", str(LAB))
    args = ("contain", "--area", AREA, "--yes", "--no-loop", "--journal", str(journal), "-i", str(LAB), *extra)
    total = irm(*args)
    first = stage_times(journal, 0)
    mark = last_stage(journal)
    again = irm(*args)
    return Path_(first, total, stage_times(journal, mark), again)


def run(work: Path, n: int) -> Run:
    return Run(contain_twice(work, n), contain_twice(work, n, "--ios-play"), floor())


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    work = Path(tempfile.mkdtemp(prefix="irm-bench-ios-"))
    results: list[Run] = []
    try:
        for n in range(runs):
            r = run(work, n)
            results.append(r)
            for label, p in (("direct", r.direct), ("--ios-play", r.play)):
                print(f"  run {n + 1} {label}: contain {p.total:.1f} s "
                      f"({', '.join(f'{k} {v:.1f}' for k, v in p.first.items())}); again {p.total_again:.1f} s "
                      f"({', '.join(f'{k} {v:.1f}' for k, v in p.again.items())})", file=sys.stderr)
            print(f"  run {n + 1}: netmiko floor {r.floor:.2f} s", file=sys.stderr)
    finally:
        irm("lab", "down", "-i", str(LAB), check=False)
    fl = statistics.median(r.floor for r in results)
    lines = [f"| irm contain --area {AREA} --no-loop (gw-y: emulated IOS) | IOS direct path (default) | / floor "
             "| --ios-play (a play) | / floor | direct faster by | runs |", "|---|---|---|---|---|---|---|"]

    def med(paths: list[Path_], pick: str, stage: str) -> float | None:
        times = [getattr(p, pick)[stage] for p in paths if stage in getattr(p, pick)]
        return statistics.median(times) if times else None

    for stage in ("isolate", "mobile"):
        for label, pick in (("first run", "first"), ("run again, nothing to change", "again")):
            dm, pm = med([r.direct for r in results], pick, stage), med([r.play for r in results], pick, stage)
            if dm is not None and pm is not None:
                lines.append(f"| {stage} stage at gw-y, {label} | {dm:.2f} s | {dm / fl:.1f}x | {pm:.1f} s | "
                             f"{pm / fl:.1f}x | {pm / dm:.1f}x | {len(results)} |")
    for label, pick in (("whole command, first run", "total"), ("whole command, run again", "total_again")):
        dt = statistics.median(getattr(r.direct, pick) for r in results)
        pt = statistics.median(getattr(r.play, pick) for r in results)
        lines.append(f"| {label} | {dt:.1f} s | | {pt:.1f} s | | {pt / dt:.1f}x | {len(results)} |")
    lines.append(f"| floor: one netmiko session writing a list of the isolate stage's size | {fl:.2f} s | 1.0x | | | | "
                 f"{len(results)} |")
    publish(markdown, "ios", lines)


if __name__ == "__main__":
    main()
