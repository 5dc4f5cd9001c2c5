"""Fault campaign: SIGKILL irm at N random moments across contain, remediate and recover, re-run, and
count how many runs converge to the end state of an uninterrupted run.

    .venv/bin/python bench/kill_campaign.py [N] [--seed S]      (default N=20; root; builds the lab N+1 times)

One uninterrupted reference run first (on a fresh lab): contain (no sub-area loop), remediate with
plans/lab-worm.yml, approve, recover. It records how long each command took and two end states: after
containment (every host's `nft list table inet irm` and the connectivity matrix) and after recovery
(the same; the baseline, no irm table anywhere). Then, for each of N runs on a fresh lab: one command
is chosen at random, killed (its whole process group, SIGKILL) at a random moment within its reference
duration, re-run, and the sequence goes on. A run converged when both of its end states equal the
reference's and `irm status --verify` finds no drift. Prints one line per run and the total; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from orchestrator.core.inventory.load import load_inventory  # noqa: E402
from orchestrator.lab import traffic  # noqa: E402

INVENTORY = ROOT / "inventories" / "lab"
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200",
       "IRM_OPERATOR": "campaign"}
AREA = "subsidiary-x"


def _approver_key() -> Path:
    ciso = next(a for a in load_inventory(INVENTORY).approvers if a.name == "ciso")
    return Path(str(ciso.key_file)).with_suffix("")  # made by `irm lab up` beside the listed public key


APPROVER_KEY = _approver_key()


def commands(journal: Path) -> list[tuple[str, list[str]]]:
    j = ["--journal", str(journal)]
    return [
        ("contain", ["contain", "--area", AREA, "--yes", "--no-loop", "--confirm-timeout", "8", *j]),
        ("remediate", ["remediate", "--area", AREA, "--plan", str(ROOT / "plans" / "lab-worm.yml"), "--yes", *j]),
        ("approve", ["approve", "--area", AREA, "--key", str(APPROVER_KEY), "--reason", "campaign", *j]),
        ("recover", ["recover", "--area", AREA, "--yes", "--soak", "3s", "--quiet-window", "1s",
                     "--confirm-timeout", "8", *j]),
    ]


def irm(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"irm {' '.join(args[:3])} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return proc


def end_state() -> tuple[dict[str, str], dict[tuple[str, str, int], str]]:
    inv = load_inventory(INVENTORY)
    assert inv.lab is not None
    tables = {}
    for host in inv.managed_hosts:
        proc = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host.name}", "nft", "list", "table", "inet",
                               "irm"], capture_output=True, text=True, check=False)
        tables[host.name] = proc.stdout if proc.returncode == 0 else ""
    results = traffic.run_probes(inv, traffic.baseline_probes(inv), timeout=0.7)
    return tables, {(r.probe.source, r.probe.target, r.probe.port): r.outcome for r in results}


def fresh_lab() -> None:
    irm(["lab", "down", "-i", str(INVENTORY)], check=False)
    irm(["lab", "up", "-i", str(INVENTORY)])


def sequence(work: Path, kill: tuple[str, float] | None) -> tuple[dict[str, float], list[object], str]:
    """The whole IRM loop on a fresh lab; with ``kill``, that command is killed after that many seconds
    and run again. Returns each command's duration, the two end states, and what happened."""
    journal = work / "journal.db"
    work.mkdir(parents=True, exist_ok=True)
    fresh_lab()
    irm(["incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal)])
    durations: dict[str, float] = {}
    states: list[object] = []
    note = "uninterrupted"
    for name, args in commands(journal):
        if kill is not None and kill[0] == name:
            proc = subprocess.Popen([str(BIN / "irm"), *args], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=kill[1])
                note = f"{name} finished before the kill at {kill[1]:.1f}s"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                note = f"{name} killed at {kill[1]:.1f}s"
        started = time.monotonic()
        irm(args)
        durations[name] = time.monotonic() - started
        if name in ("contain", "recover"):
            states.append(end_state())
    verify = irm(["status", "--verify", "--journal", str(journal)], check=False)
    states.append(verify.returncode)
    return durations, states, note


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=20)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--markdown", type=Path, help="write the result into this Markdown file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"kill campaign: N={args.n}, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="irm-campaign-") as tmp:
        try:
            durations, reference, _ = sequence(Path(tmp) / "reference", None)
            print("reference: " + ", ".join(f"{k} {v:.1f}s" for k, v in durations.items()))
            converged = 0
            for i in range(1, args.n + 1):
                name = rng.choice(["contain", "remediate", "recover"])
                at = rng.uniform(0.5, durations[name])
                work = Path(tmp) / f"run-{i}"
                try:
                    _, states, note = sequence(work, (name, at))
                    same = states == reference
                    why = "" if same else " DIVERGED: " + ", ".join(
                        what for what, a, b in zip(("after contain", "after recover", "verify exit"), states,
                                                   reference, strict=True) if a != b)
                except RuntimeError as exc:
                    same, note, why = False, f"{name} killed at {at:.1f}s", f" FAILED: {exc}"
                converged += same
                print(f"run {i:2d}: {note}: {'converged' if same else 'not converged'}{why}", flush=True)
            from bench.markdown import publish

            publish(args.markdown, "kill_campaign", [
                "| runs | converged | seed | reference: " + ", ".join(durations) + " |", "|---|---|---|---|",
                f"| {args.n} | {converged} of {args.n} | {args.seed} | "
                + ", ".join(f"{v:.1f} s" for v in durations.values()) + " |"])
        finally:
            irm(["lab", "down", "-i", str(INVENTORY)], check=False)


if __name__ == "__main__":
    main()
