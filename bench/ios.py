"""Benchmark: irm's stages on the emulated IOS boundary gw-y, against a bare netmiko session, in one run.

    .venv/bin/python bench/ios.py [--runs N] [--markdown FILE]     (needs root; builds the shipped lab,
    lab name irmlab: never while make test runs)

For each run (default 3), on a freshly built lab: `irm contain --area subsidiary-y --yes --no-loop`
(the Internet cut at the edge, isolation and the mobile stage at gw-y, the vectors on its 3 hosts), then
the same command again (nothing to change); then the same two commands with `--ios-play` on a lab built
again (gw-y changed by the collection's irm_ios_acl module in a play, the path before the IOS direct
one). Each stage's time is the journal's (its row started to ended, the confirm included); the total is
the command's wall time. The floor, measured in the same run: one netmiko session to gw-y (log in,
enable, `configure terminal revert timer 1`, the isolate stage's access list under a throwaway name,
`end`, `configure confirm`): what one device round of the same size costs with nothing read or
checked. Then, on a lab built again each time, one `irm contain` of all four lab areas (gw-y's among
three Linux gateways) with irm's defaults and with `--ios-play --no-warm` (every stage a play, as
before the IOS direct and warm paths). Prints the medians and their ratios; asserts nothing (targets
in docs/benchmarks.md).
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
AREAS = ("hq", "subsidiary-x", "subsidiary-y", "subsidiary-z")  # every lab area: gw-y's among Linux gateways


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
    """One netmiko session writing a list of the isolate stage's size to gw-y under a revert timer, then
    confirming it (the login, `configure terminal revert timer`, the lines, `configure confirm`): the
    device round of a changing stage with nothing read or checked. The list is then deleted."""
    from orchestrator.core import ios_direct, ios_readback
    from orchestrator.core.paths import module_util
    from orchestrator.core.posture import AreaState, policies

    inv = load_inventory(LAB)
    host = inv.hosts["gw-y"]
    render = module_util("irm_ios_render")
    policy = policies(inv, [], {AREA: AreaState(posture="isolated")})["gw-y"].model_dump(mode="json")
    aces = render.render("gw-y", policy)
    start = time.monotonic()
    conn = ios_direct._login(host)
    try:
        ios_direct.configure(conn, "gw-y", ["ip access-list extended BENCH-FLOOR",
                                            *[f"{10 * (i + 1)} {a}" for i, a in enumerate(aces)], "exit"], 1)
        ios_readback.exec_command(conn, "configure confirm")
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
class Areas:
    total: float  # the whole command's wall time
    stages: dict[str, float]  # stage -> seconds (the longest of its areas' rows: one play or run for all)


@dataclass
class Run:
    direct: Path_  # irm's default: the IOS direct path (core.ios_direct)
    play: Path_  # --ios-play: the irm_ios_acl module in a play over network_cli
    floor: float
    areas_fast: Areas  # the four areas, irm's defaults (IOS direct path, warm path)
    areas_plays: Areas  # the four areas, --ios-play --no-warm (every stage a play)


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


def four_areas(work: Path, n: int, *extra: str) -> Areas:
    """One `irm contain` of every lab area on a fresh lab: the whole command and each stage."""
    from datetime import datetime

    irm("lab", "down", "-i", str(LAB), check=False)
    irm("lab", "up", "-i", str(LAB))
    journal = work / f"areas-{n}{'-'.join(extra)}.db"
    irm("incident", "open", "--worm", "bench", "--vector", "tcp/4445", "--journal", str(journal), "-i", str(LAB))
    total = irm("contain", *(a for name in AREAS for a in ("--area", name)), "--yes", "--no-loop", "--journal",
                str(journal), "-i", str(LAB), *extra)
    stages: dict[str, float] = {}
    with closing(Journal.reader(journal)) as j:
        for st in j.stages.of(1):
            if st.ended_at and not st.check_mode:
                took = (datetime.fromisoformat(st.ended_at) - datetime.fromisoformat(st.started_at)).total_seconds()
                stages[st.name] = max(stages.get(st.name, 0.0), took)
    return Areas(total, stages)


def run(work: Path, n: int) -> Run:
    return Run(contain_twice(work, n), contain_twice(work, n, "--ios-play"), floor(),
               four_areas(work, n), four_areas(work, n, "--ios-play", "--no-warm"))


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
            print(f"  run {n + 1}: netmiko floor {r.floor:.2f} s; four areas {r.areas_fast.total:.1f} s "
                  f"({r.areas_fast.stages}), every stage a play {r.areas_plays.total:.1f} s ({r.areas_plays.stages})",
                  file=sys.stderr)
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
    lines.append(f"| floor: one netmiko login writing a list of the isolate stage's size, confirmed | {fl:.2f} s "
                 f"| 1.0x | | | | {len(results)} |")
    publish(markdown, "ios", lines)
    areas = [f"| irm contain --area {' --area '.join(AREAS)} --no-loop | irm's defaults (IOS direct path, warm path) "
             "| --ios-play --no-warm (every stage a play) | faster by | runs |", "|---|---|---|---|---|"]
    for stage in ("internet_cut", "isolate", "vectors", "mobile"):
        fast = [r.areas_fast.stages[stage] for r in results if stage in r.areas_fast.stages]
        slow = [r.areas_plays.stages[stage] for r in results if stage in r.areas_plays.stages]
        if fast and slow:
            fm, sm = statistics.median(fast), statistics.median(slow)
            areas.append(f"| {stage} stage, every area at once | {fm:.1f} s | {sm:.1f} s | {sm / fm:.1f}x | "
                         f"{len(fast)} |")
    ft = statistics.median(r.areas_fast.total for r in results)
    st = statistics.median(r.areas_plays.total for r in results)
    areas.append(f"| whole command | {ft:.1f} s | {st:.1f} s | {st / ft:.1f}x | {len(results)} |")
    publish(markdown, "ios_areas", areas)


if __name__ == "__main__":
    main()
