"""Benchmark: irm watch, from the first detection to the cut, and against a human-speed response.

    .venv/bin/python bench/watch.py [--trials N] [--plays N] [--cold N] [--compare N] [--rate R] [--trust SOURCES]
        [--markdown FILE]
    (needs root; builds the shipped lab, lab name irmlab: never while make test runs)

latency (a fresh lab each trial): every area host outside subsidiary-x patched (the worm stays there),
the lab's policy (inventories/lab/containment-policy.yml) signed with the lab approvers' keys, `irm
watch` running, the worm seeded on x-ws11. Three ways of cutting: --trials N (default 20) with the warm
path (the default: held SSH connections, no play), --plays N (default 10) with --no-warm (every stage a
play; Ansible's connections kept open by a reach every 20 s), --cold N (default 5) with --no-warm
--keep-warm 0. Measured from the first detection any source wrote (an AV log line, a gateway sensor's
alert) to the moment subsidiary-x's first cut (the edge) and its isolation (gw-x) took effect on the
device (irm_nft's applied time, journaled), then checked by traffic: x-ws11 no longer reaches hq-erp.
Also the first cut's stage as journaled (row started to row ended) and, after each warm trial, the
bare-SSH floor: a new SSH connection to the edge and `nft -f -` of the table it holds (median of 5).

compare (N runs each, default 2): the worm at R attempts per second per infected host (default 0.2,
slow enough for a person to matter; the shipped lab's 2/s infects every area in about 2 s), everything
vulnerable; hosts infected 90 s after the seed (a) with `irm watch` running under the lab's policy with
`through: vectors` and `quarantine: true` (isolation alone leaves the spread inside an area to go on; the
vectors stage blocks it on the area hosts, the quarantine cuts each sub-area that crosses the trigger),
(b) with a scripted operator who, 60 s after the first detection, runs `irm incident open` and `irm
contain --detected --no-loop` (every stage). Prints the ratio; asserts nothing (targets:
docs/benchmarks.md). Written to its own section (watch_compare), so `--trials 0 --plays 0 --cold 0
--drill 0` runs it alone. --trust SOURCES adds sources the watcher's policy trusts on their own (e.g.
lab_av: the first AV detection fires the trigger) and writes section watch_compare_trusted instead.

drill (once): a false-positive drill. The policy's hourly limit set to one area (and signed again);
forged gateway-sensor alerts appended to the lab's EVE log for hosts of hq (an area the policy does not
name) and of subsidiary-x and subsidiary-y (two areas it names). Expected: hq untouched, one of the two
areas contained, the other held back and journaled (`watch_refused`); the table says what happened.
"""

from __future__ import annotations

import json
import os
import re
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


def signed_policy(inv: Inventory, work: Path, inv_dir: Path, through: str | None = None,
                  quarantine: bool = False, trust: str = "") -> Path:
    """The lab's policy (``through`` another last stage, when given; with ``quarantine``, the sub-area loop
    too; ``trust``: more sources trusted on their own, comma-separated), signed by the lab's approvers."""
    policy = work / "containment-policy.yml"
    text = (ROOT / "inventories" / "lab" / "containment-policy.yml").read_text()
    if trust:
        text, n = re.subn(r"trusted_sources: \[([^\]]*)\]", lambda m: f"trusted_sources: [{m.group(1)}, {trust}]",
                          text, count=1)
        assert n == 1, "the lab policy names no trusted_sources"
    if through is not None:
        text, n = re.subn(r"^through: \S+", f"through: {through}", text, count=1, flags=re.M)
        assert n == 1, "the lab policy names no through"
    if quarantine:
        text += "quarantine: true\n"
    policy.write_text(text)
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


MODES = {"warm": [], "plays": ["--no-warm"], "cold": ["--no-warm", "--keep-warm", "0"]}


def watcher(policy: Path, journal: Path, inv_dir: Path, mode: str = "warm") -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(BIN / "irm"), "watch", "--policy", str(policy), "--journal", str(journal), "-i",
                             str(inv_dir), "--confirm-timeout", "30", *MODES[mode]],
                            cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "watching ..." once the journal holds watch_started
    if not line.startswith("watching"):
        raise SystemExit(f"irm watch did not start: {line}{proc.stdout.read()}")
    while mode == "warm" and "warm path: connections held" not in line:  # prepared before any evaluation
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("irm watch stopped before its warm path was ready")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()


def stage_run(journal: Path, area: str, stage: str) -> tuple[float, str]:
    """A done stage's duration as journaled (its row started to its row ended: the lockout check, the
    change, the read-back and the journal's writes) and what ran it (warm, ansible-playbook)."""
    with Journal.reader(journal) as j:
        for inc in j.incidents.all():
            for st in j.stages.of(inc.id, area):
                if st.name == stage and st.state == "done" and st.ended_at:
                    took = datetime.fromisoformat(st.ended_at) - datetime.fromisoformat(st.started_at)
                    return took.total_seconds(), str(st.detail.get("via", "?"))
    raise SystemExit(f"{journal}: no done {stage} stage for {area}")


def bare_ssh_floor(inv: Inventory, hosts: list[str], repeat: int = 5) -> float:
    """The floor: a new SSH connection to each host at once, ``nft -f -`` of the irm table it holds now
    (deleted and loaded again in one nft transaction: nothing changes), no Python, no check, no confirm.
    Median wall time of ``repeat`` rounds."""
    assert inv.lab is not None
    ssh_dir = Path(inv.lab.state_dir) / "ssh"
    base = ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "ControlPath=none", "-l", "root"]
    tables = {h: subprocess.run([*base, str(inv.hosts[h].address), "nft list table inet irm"], capture_output=True,
                                text=True, check=True).stdout for h in hosts}
    rounds = []
    for _ in range(repeat):
        started = time.monotonic()
        procs = [subprocess.Popen([*base, str(inv.hosts[h].address), "nft -f -"], stdin=subprocess.PIPE, text=True)
                 for h in hosts]
        for h, p in zip(hosts, procs, strict=True):
            p.communicate(f"delete table inet irm\n{tables[h]}")
            if p.returncode != 0:
                raise SystemExit(f"bare ssh nft -f - on {h} failed")
        rounds.append(time.monotonic() - started)
    return statistics.median(rounds)


Trial = tuple[float, float, str, float, str, float | None]


def latency_trial(inv_dir: Path, work: Path, n: int, mode: str = "warm") -> Trial:
    """(first cut, isolation) after the first detection, x-ws11 -> hq-erp after, the first cut's stage
    duration and what ran it, and (warm trials) the bare-SSH floor to the edge measured right after."""
    irm("lab", "down", "-i", str(inv_dir), check=False)
    irm("lab", "up", "-i", str(inv_dir))
    inv = load_inventory(inv_dir)
    patch(inv, [h.name for h in inv.hosts.values() if h.kind == "area" and h.area != "subsidiary-x"])
    policy = signed_policy(inv, work, inv_dir)
    journal = work / f"latency-{n}-{mode}.db"
    proc = watcher(policy, journal, inv_dir, mode)
    try:
        if mode == "plays":
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
    took, via = stage_run(journal, "subsidiary-x", "internet_cut")
    floor = bare_ssh_floor(inv, [inv.edge.name]) if mode == "warm" and inv.edge else None
    return ((cut - first).total_seconds(), (isolated - first).total_seconds(),
            "blocked" if probe.returncode != 0 else "OPEN", took, via, floor)


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


def compare_trial(inv_dir: Path, work: Path, n: int, automatic: bool, trust: str = "") -> int:
    irm("lab", "down", "-i", str(inv_dir), check=False)
    irm("lab", "up", "-i", str(inv_dir))
    inv = load_inventory(inv_dir)
    from tests.conftest import NODE_AREA_HOSTS

    patch(inv, list(NODE_AREA_HOSTS))  # as the test lab: the execution node's area hosts stay clean
    journal = work / f"compare-{n}-{automatic}.db"
    # the watcher blocks the vectors on the area hosts too (policy through: vectors) and quarantines each
    # sub-area that crosses the trigger (quarantine: true): isolation alone leaves the spread inside an area
    # to go on, and the operator's contain runs every stage
    proc = watcher(signed_policy(inv, work, inv_dir, "vectors", quarantine=True, trust=trust), journal, inv_dir) \
        if automatic else None
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
        postures = {a: p for inc in incidents for a, p in j.stages.postures(inc.id).items()
                    if ":" not in a and "/" not in a}
        refused = [e["detail"] for e in j.timeline.of_kinds((EventKind.WATCH_REFUSED,))]
    contained = sorted(a for a, p in postures.items() if p != "connected")
    held = sorted({a for r in refused for a in r["areas"]})
    return [f"| forged alerts for {', '.join(forged)} (hq is not in the policy; limit 1 area per hour) | "
            f"contained: {', '.join(contained) or 'nothing'}; held back and journaled: {', '.join(held) or 'nothing'}"
            f"; hq {'TOUCHED' if 'hq' in postures else 'untouched'} |"]


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    opts = {"--trials": 20, "--plays": 10, "--cold": 5, "--compare": 2, "--rate": 0.2, "--drill": 1}
    trust = argv[argv.index("--trust") + 1] if "--trust" in argv else ""
    for key in list(opts):
        if key in argv:
            i = argv.index(key)
            opts[key] = type(opts[key])(argv[i + 1])
    work = Path(tempfile.mkdtemp(prefix="irm-bench-watch-"))
    lab_dir = ROOT / "inventories" / "lab"
    runs: dict[str, list[Trial]] = {"warm": [], "plays": [], "cold": []}
    auto: list[int] = []
    human: list[int] = []
    drilled: list[str] = []
    try:
        if int(opts["--drill"]):
            drilled = drill(work)
        for mode, key in (("warm", "--trials"), ("plays", "--plays"), ("cold", "--cold")):
            for n in range(int(opts[key])):
                t = latency_trial(lab_dir, work, n, mode)
                runs[mode].append(t)
                print(f"  {mode} trial {n + 1}: first cut {t[0]:.2f} s, isolation {t[1]:.2f} s, {t[2]}; stage "
                      f"{t[3]:.3f} s via {t[4]}" + (f", bare ssh floor {t[5]:.3f} s" if t[5] else ""), file=sys.stderr)
        slow = slow_inventory(work, float(opts["--rate"]))
        for n in range(int(opts["--compare"])):
            auto.append(compare_trial(slow, work, n, True, trust))
            human.append(compare_trial(slow, work, n, False))
            print(f"  compare {n + 1}: irm watch {auto[-1]} infected, operator {human[-1]}", file=sys.stderr)
    finally:
        irm("lab", "down", "-i", str(lab_dir), check=False)
        shutil.rmtree(work, ignore_errors=True)
    lines = []
    labels = {"warm": "warm path (default)", "plays": "--no-warm (plays, Ansible's connections kept warm)",
              "cold": "--no-warm --keep-warm 0 (plays, cold)"}
    if any(runs.values()):
        lines += ["| irm watch | from the first detection to | median | worst | trials | x-ws11 -> hq-erp after |",
                  "|---|---|---|---|---|---|"]
    for mode, trials in runs.items():
        if trials:
            cuts, isos = [t[0] for t in trials], [t[1] for t in trials]
            lines += [f"| {labels[mode]} | the first cut (edge) | {statistics.median(cuts):.2f} s | "
                      f"{max(cuts):.2f} s | {len(cuts)} | |",
                      f"| {labels[mode]} | isolation (gw-x) | {statistics.median(isos):.2f} s | {max(isos):.2f} s | "
                      f"{len(isos)} | {', '.join(sorted(set(t[2] for t in trials)))} |"]
    if any(runs.values()):
        lines += ["", "| the first cut's stage (edge-fw), journaled start to end | median | ran as | trials |",
                  "|---|---|---|---|"]
        for mode, trials in runs.items():
            if trials:
                lines.append(f"| {labels[mode]} | {statistics.median(t[3] for t in trials):.3f} s | "
                             f"{', '.join(sorted(set(t[4] for t in trials)))} | {len(trials)} |")
        floors = [t[5] for t in runs["warm"] if t[5] is not None]
        if floors:
            warm_stage = statistics.median(t[3] for t in runs["warm"])
            floor = statistics.median(floors)
            lines += [f"| bare SSH floor: a new connection, `nft -f -` of the same table, no check, no confirm | "
                      f"{floor:.3f} s | ssh | {len(floors)} x 5 |",
                      f"| warm path / floor | {warm_stage / floor:.1f}x | | |"]
    compared = []
    if auto:
        ratio = statistics.median(human) / max(1, statistics.median(auto))
        compared += [f"| hosts infected {HORIZON:.0f} s after the seed (worm at {opts['--rate']}/s per host) | "
                  "median | runs |", "|---|---|---|",
                  "| irm watch running (policy through: vectors, quarantine"
                  + (f", trusting {trust} on its own" if trust else "")
                  + f") | {statistics.median(auto):.0f} | "
                  f"{', '.join(map(str, auto))} |",
                  f"| an operator acting {OPERATOR_DELAY:.0f} s after the first detection | "
                  f"{statistics.median(human):.0f} | {', '.join(map(str, human))} |",
                  f"| ratio | {ratio:.1f}x fewer with irm watch | |"]
    if drilled:
        lines += ["", "| false-positive drill | what irm watch did |", "|---|---|", *drilled]
    if lines:  # a run of the comparison alone leaves the latency section as it was, and the reverse
        publish(markdown, "watch", lines)
    if compared:
        publish(markdown, "watch_compare" + ("_trusted" if trust else ""), compared)


if __name__ == "__main__":
    main()
