"""Benchmark: irm watch, from the first detection to the cut, and against a human-speed response.

    .venv/bin/python bench/watch.py [--trials N] [--compare N] [--rate R] [--markdown FILE]
    (needs root; builds the shipped lab, lab name irmlab: never while make test runs)

latency (N trials, default 20, with the watcher's default --keep-warm 20; then --cold N more, default
10, with --keep-warm 0; a fresh lab each): every area host outside subsidiary-x patched (the
worm stays there), the lab's policy (inventories/lab/containment-policy.yml) signed with the lab
approvers' keys, `irm watch` running, the worm seeded on x-ws11. Measured from the first detection any
source wrote (an AV log line, a gateway sensor's alert) to the moment subsidiary-x's first cut (the edge)
and its isolation (gw-x) took effect on the device (irm_nft's applied time, journaled), then checked by
traffic: x-ws11 no longer reaches hq-erp.

compare (N runs each, default 2): the worm at R attempts per second per infected host (default 0.2,
slow enough for a person to matter; the shipped lab's 2/s infects every area in about 2 s), everything
vulnerable; hosts infected 90 s after the seed (a) with `irm watch` running, (b) with a scripted
operator who, 60 s after the first detection, runs `irm incident open` and `irm contain --detected
--no-loop` (the same stages and more). Prints the ratio; asserts nothing (targets: docs/benchmarks.md).

drill (once): a false-positive drill. The policy's hourly limit set to one area (and signed again);
forged gateway-sensor alerts appended to the lab's EVE log for hosts of hq (an area the policy does not
name) and of subsidiary-x and subsidiary-y (two areas it names). Expected: hq untouched, one of the two
areas contained, the other held back and journaled (`watch_refused`); the table says what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
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

from orchestrator.core.errors import UserError  # noqa: E402
from orchestrator.core.events import EventKind  # noqa: E402
from orchestrator.core.inventory import Inventory  # noqa: E402
from orchestrator.core.inventory.load import load_inventory  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
HORIZON = 90.0  # seconds after the seed at which infections are counted
OPERATOR_DELAY = 60.0  # the scripted operator's reaction time after the first detection


def irm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def first_detection(inv: Inventory) -> datetime | None:
    times: list[datetime] = []
    for host in inv.hosts.values():
        if host.av_log and Path(host.av_log).exists():
            for line in Path(host.av_log).read_text().splitlines():
                times.append(datetime.fromisoformat(json.loads(line)["time"]))
    assert inv.lab is not None
    eve = Path(inv.lab.state_dir) / "sensors" / "eve.json"
    if eve.exists():
        for line in eve.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event_type") == "alert":
                times.append(datetime.fromisoformat(rec["timestamp"]))
    aware = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
    return min(aware) if aware else None


def applied(journal: Path, area: str, stage: str) -> datetime | None:
    try:
        j = Journal.reader(journal)
    except UserError:  # not created yet
        return None
    try:
        for inc in j.incidents.all():
            for st in j.stages.of(inc.id, area):
                if st.name == stage and st.state == "done" and st.detail.get("first_applied_at"):
                    return datetime.fromisoformat(str(st.detail["first_applied_at"]))
        return None
    finally:
        j.close()


def signed_policy(inv: Inventory, work: Path, inv_dir: Path) -> Path:
    policy = work / "containment-policy.yml"
    shutil.copy(ROOT / "inventories" / "lab" / "containment-policy.yml", policy)
    for approver in inv.approvers:
        assert approver.key_file
        irm("policy", "sign", str(policy), "--key", str(Path(approver.key_file).with_suffix("")), "-i", str(inv_dir))
    return policy


def patch(inv: Inventory, hosts: list[str]) -> None:
    for name in hosts:
        (Path(inv.hosts[name].state_dir) / "patched").write_text("bench\n")


def wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def watcher(policy: Path, journal: Path, inv_dir: Path, warm: bool = True) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(BIN / "irm"), "watch", "--policy", str(policy), "--journal", str(journal), "-i",
                             str(inv_dir), "--confirm-timeout", "30", "--keep-warm", "20" if warm else "0"],
                            cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "watching ..." once the journal holds watch_started
    if not line.startswith("watching"):
        raise SystemExit(f"irm watch did not start: {line}{proc.stdout.read()}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()


def latency_trial(inv_dir: Path, work: Path, n: int, warm: bool = True) -> tuple[float, float, str]:
    irm("lab", "down", "-i", str(inv_dir), check=False)
    irm("lab", "up", "-i", str(inv_dir))
    inv = load_inventory(inv_dir)
    patch(inv, [h.name for h in inv.hosts.values() if h.kind == "area" and h.area != "subsidiary-x"])
    policy = signed_policy(inv, work, inv_dir)
    journal = work / f"latency-{n}-{warm}.db"
    proc = watcher(policy, journal, inv_dir, warm)
    try:
        if warm:
            time.sleep(3)  # the watcher's first reach of the chokepoints (then every 20 s)
        irm("lab", "infect", "x-ws11", "-i", str(inv_dir))
        if not wait(lambda: applied(journal, "subsidiary-x", "isolate") is not None, 120):
            raise SystemExit(f"trial {n}: subsidiary-x was not isolated within 120 s")
    finally:
        stop(proc)
    first = first_detection(inv)
    cut, isolated = applied(journal, "subsidiary-x", "internet_cut"), applied(journal, "subsidiary-x", "isolate")
    assert first and cut and isolated
    probe = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-x-ws11", "timeout", "2", "bash", "-c",  # type: ignore[union-attr]
                            f"exec 3<>/dev/tcp/{inv.hosts['hq-erp'].address}/22"], capture_output=True, check=False)
    return (cut - first).total_seconds(), (isolated - first).total_seconds(), \
        "blocked" if probe.returncode != 0 else "OPEN"


def slow_inventory(work: Path, rate: float) -> Path:
    inv_dir = work / "slow-inventory"
    if inv_dir.exists():
        shutil.rmtree(inv_dir)
    shutil.copytree(ROOT / "inventories" / "lab", inv_dir)
    all_vars = inv_dir / "group_vars" / "all.yml"
    data = yaml.safe_load(all_vars.read_text())
    old = data["irm_lab_worm"]["rate"]
    text = all_vars.read_text().replace(f"  rate: {old} ", f"  rate: {rate} ", 1)
    if f"rate: {rate}" not in text:
        raise SystemExit(f"{all_vars}: could not set the worm's rate")
    all_vars.write_text(text)
    return inv_dir


def infected_count(inv_dir: Path) -> int:
    return len(json.loads(irm("lab", "infections", "--json", "-i", str(inv_dir)).stdout))


def compare_trial(inv_dir: Path, work: Path, n: int, automatic: bool) -> int:
    irm("lab", "down", "-i", str(inv_dir), check=False)
    irm("lab", "up", "-i", str(inv_dir))
    inv = load_inventory(inv_dir)
    from tests.conftest import NODE_AREA_HOSTS

    patch(inv, list(NODE_AREA_HOSTS))  # as the test lab: the execution node's area hosts stay clean
    journal = work / f"compare-{n}-{automatic}.db"
    proc = watcher(signed_policy(inv, work, inv_dir), journal, inv_dir) if automatic else None
    seeded = time.monotonic()
    try:
        irm("lab", "infect", "x-ws11", "-i", str(inv_dir))
        if not automatic:
            wait(lambda: first_detection(inv) is not None, HORIZON)
            time.sleep(max(0.0, OPERATOR_DELAY - (time.monotonic() - seeded)))
            irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal),
                "-i", str(inv_dir))
            irm("contain", "--detected", "--yes", "--no-loop", "--confirm-timeout", "30", "--journal", str(journal),
                "-i", str(inv_dir), check=False)
        time.sleep(max(0.0, HORIZON - (time.monotonic() - seeded)))
        return infected_count(inv_dir)
    finally:
        if proc is not None:
            stop(proc)


def drill(work: Path) -> list[str]:
    """The false-positive drill: forged alerts beyond the policy and beyond its hourly limit."""
    from orchestrator.lab.sensor import alert

    lab_dir = ROOT / "inventories" / "lab"
    irm("lab", "down", "-i", str(lab_dir), check=False)
    irm("lab", "up", "-i", str(lab_dir))
    inv = load_inventory(lab_dir)
    policy = work / "drill-policy.yml"
    text = (ROOT / "inventories" / "lab" / "containment-policy.yml").read_text()
    policy.write_text(text.replace("max_areas_per_hour: 3", "max_areas_per_hour: 1"))
    for approver in inv.approvers:
        assert approver.key_file
        irm("policy", "sign", str(policy), "--key", str(Path(approver.key_file).with_suffix("")), "-i", str(lab_dir))
    journal = work / "drill.db"
    proc = watcher(policy, journal, lab_dir)
    assert inv.lab is not None
    eve = Path(inv.lab.state_dir) / "sensors" / "eve.json"
    forged = ["hq-ws1", "hq-erp", "x-ws11", "y-ws11"]
    try:
        with eve.open("a") as fh:
            for i, host in enumerate(forged):
                fh.write(json.dumps(alert("gw-forged", "forged0", str(inv.hosts[host].address), 40000 + i,
                                          str(inv.hosts["soc-console"].address), 4445, 900000 + i)) + "\n")
        wait(lambda: applied(journal, "subsidiary-x", "isolate") or applied(journal, "subsidiary-y", "isolate"), 90)
        time.sleep(5)  # the refusal of the second area, and anything else the watcher would do
    finally:
        stop(proc)
    with Journal.reader(journal) as j:
        incidents = j.incidents.all()
        postures = {a: p for inc in incidents for a,
                    p in j.stages.postures(inc.id).items() if ":" not in a and "/" not in a}
        refused = [e["detail"] for e in j.timeline.of_kinds((EventKind.WATCH_REFUSED,))]
    contained = sorted(a for a, p in postures.items() if p != "connected")
    held = sorted({a for r in refused for a in r["areas"]})
    return [f"| forged alerts for {', '.join(forged)} (hq is not in the policy; limit 1 area per hour) | "
            f"contained: {', '.join(contained) or 'nothing'}; held back and journaled: {', '.join(held) or 'nothing'}"
            f"; hq {'TOUCHED' if 'hq' in postures else 'untouched'} |"]


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    opts = {"--trials": 20, "--cold": 10, "--compare": 2, "--rate": 0.2, "--drill": 1}
    for key in list(opts):
        if key in argv:
            i = argv.index(key)
            opts[key] = type(opts[key])(argv[i + 1])
    work = Path(tempfile.mkdtemp(prefix="irm-bench-watch-"))
    lab_dir = ROOT / "inventories" / "lab"
    lat: list[tuple[float, float, str]] = []
    cold: list[tuple[float, float, str]] = []
    auto: list[int] = []
    human: list[int] = []
    drilled: list[str] = []
    try:
        if int(opts["--drill"]):
            drilled = drill(work)
        for n in range(int(opts["--trials"])):
            lat.append(latency_trial(lab_dir, work, n))
            print(f"  trial {n + 1}: first cut {lat[-1][0]:.1f} s, isolation {lat[-1][1]:.1f} s, {lat[-1][2]}",
                  file=sys.stderr)
        for n in range(int(opts["--cold"])):
            cold.append(latency_trial(lab_dir, work, n, warm=False))
            print(f"  cold trial {n + 1}: first cut {cold[-1][0]:.1f} s, isolation {cold[-1][1]:.1f} s",
                  file=sys.stderr)
        slow = slow_inventory(work, float(opts["--rate"]))
        for n in range(int(opts["--compare"])):
            auto.append(compare_trial(slow, work, n, True))
            human.append(compare_trial(slow, work, n, False))
            print(f"  compare {n + 1}: irm watch {auto[-1]} infected, operator {human[-1]}", file=sys.stderr)
    finally:
        irm("lab", "down", "-i", str(lab_dir), check=False)
        shutil.rmtree(work, ignore_errors=True)
    lines = []
    if lat or cold:
        lines += ["| irm watch | from the first detection to | median | worst | trials | x-ws11 -> hq-erp after |",
                  "|---|---|---|---|---|---|"]
    for label, runs in (("connections kept warm (default)", lat), ("--keep-warm 0", cold)):
        if runs:
            cuts, isos = [c for c, _, _ in runs], [i for _, i, _ in runs]
            lines += [f"| {label} | the first cut (edge) | {statistics.median(cuts):.1f} s | {max(cuts):.1f} s | "
                      f"{len(cuts)} | |",
                      f"| {label} | isolation (gw-x) | {statistics.median(isos):.1f} s | {max(isos):.1f} s | "
                      f"{len(isos)} | {', '.join(sorted(set(t for _, _, t in runs)))} |"]
    if auto:
        ratio = statistics.median(human) / max(1, statistics.median(auto))
        lines += ["", f"| hosts infected {HORIZON:.0f} s after the seed (worm at {opts['--rate']}/s per host) | "
                  "median | runs |", "|---|---|---|",
                  f"| irm watch running | {statistics.median(auto):.0f} | {', '.join(map(str, auto))} |",
                  f"| an operator acting {OPERATOR_DELAY:.0f} s after the first detection | "
                  f"{statistics.median(human):.0f} | {', '.join(map(str, human))} |",
                  f"| ratio | {ratio:.1f}x fewer with irm watch | |"]
    if drilled:
        lines += ["", "| false-positive drill | what irm watch did |", "|---|---|", *drilled]
    publish(markdown, "watch", lines)


if __name__ == "__main__":
    main()
