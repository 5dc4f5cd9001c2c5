"""Benchmark: time to first cut and to full containment against two baselines measured in the same run.

    .venv/bin/python bench/containment.py [N ...]        (default: 10 50 110; needs root, builds labs)

For each area size N (hosts in area `bench-x`, from bench/make_inventory.py):
  irm        `irm contain --area bench-x --yes --no-loop`, timed from the journal: first cut = when the
             edge's new ruleset took effect (returned by the irm_nft module), full containment = the
             containment_finished event, both from the moment containment started. Prepared: after `irm
             prepare` (untimed: the preparation phase, which resolves and keeps every Linux host's warm-path
             options), so every stage goes warm from the first. Then, each on a lab built again and with an
             empty cache directory: cold (the options resolved during the run, the first stages as plays)
             and `--no-warm` (every stage a play, irm's path before the warm path).
  (a) manual the same rendered rulesets (read back from irm's run) applied by a plain ansible-playbook
             with Ansible's default settings (forks 5, no pipelining, facts gathered): copy, then nft -f,
             host by host, as an operator would by hand.
  (b) limit  the physical limit for the first cut: a bare parallel `ssh HOST nft -f -` of the same
             rendered rules on the chokepoints (edge and gateway) only.
  (c) floor  for reference: an empty play run by ansible-playbook (its own start-up on this machine), the
             least any change made through Ansible can take.
  (d) bare   the floor of a full containment: a bare parallel `ssh HOST nft -f -` of the same rendered
             rules on every host at once (edge, gateway, every area host), no Ansible, no journal, no
             dead-man timer.
Each baseline runs on a freshly built lab. Prints ratios; asserts nothing (targets in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench.make_inventory import inventory  # noqa: E402
from orchestrator.core.inventory.load import load_inventory  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}


def irm(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def fresh_lab(inv_dir: Path) -> float:
    subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV, check=False)
    started = time.monotonic()
    irm("lab", "up", "-i", str(inv_dir))
    return time.monotonic() - started


def run_irm(inv_dir: Path, work: Path, *extra: str, prepared: bool = False) -> tuple[float, float]:
    journal = work / f"journal{'-'.join(extra)}{'-prepared' if prepared else ''}.db"
    # a cache directory of its own: cold unless prepared
    ENV["IRM_CACHE_DIR"] = str(work / f"cache{'-'.join(extra)}{'-prepared' if prepared else ''}")
    irm("incident", "open", "--worm", "Bench.Worm", "--vector", "tcp/4445", "--journal", str(journal))
    if prepared:  # exit 1 (no crisis cell, no notification channel in the bench inventory) is expected
        subprocess.run([str(BIN / "irm"), "prepare", "-i", str(inv_dir), "--journal", str(journal)],
                       capture_output=True, env=ENV, cwd=ROOT, check=False)
    irm("contain", "--area", "bench-x", "--yes", "--no-loop", "--confirm-timeout", "300", "--journal",
        str(journal), "-i", str(inv_dir), *extra)
    db = sqlite3.connect(journal)
    (start,) = db.execute("SELECT detail FROM events WHERE kind='containment_started'").fetchone()
    (detail,) = db.execute("SELECT detail FROM stages WHERE name='internet_cut'").fetchone()
    (end,) = db.execute("SELECT time FROM events WHERE kind='containment_finished'").fetchone()
    t0 = datetime.fromisoformat(json.loads(start)["started_at"])
    cut = datetime.fromisoformat(json.loads(detail)["first_applied_at"])  # when the edge's rules took effect
    return (cut - t0).total_seconds(), (datetime.fromisoformat(end) - t0).total_seconds()


def keep_rendered(inv_dir: Path, dest: Path) -> list[str]:
    inv = load_inventory(inv_dir)
    hosts = []
    for host in inv.managed_hosts:
        src = Path(host.state_dir) / "firewall" / "desired.nft"
        if src.exists():
            shutil.copy(src, dest / f"{host.name}.nft")
            hosts.append(host.name)
    return hosts


def run_manual(inv_dir: Path, rules: Path, hosts: list[str], work: Path) -> float:
    playbook = work / "manual.yml"
    playbook.write_text(
        "- name: Apply the containment rulesets by hand\n"
        f"  hosts: {':'.join(hosts)}\n"
        "  tasks:\n"
        "    - name: Copy the ruleset\n"
        f"      ansible.builtin.copy: {{src: '{rules}/{{{{ inventory_hostname }}}}.nft', "
        "dest: '{{ irm_host_state_dir }}/manual.nft', mode: '0600'}\n"
        "    - name: Apply it\n"
        "      ansible.builtin.command: nft -f {{ irm_host_state_dir }}/manual.nft\n")
    empty = work / "ansible.cfg"
    empty.write_text("[defaults]\n")
    started = time.monotonic()
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv_dir), str(playbook)], capture_output=True,
                          text=True, env={**ENV, "ANSIBLE_CONFIG": str(empty)}, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"manual baseline failed:\n{proc.stdout[-3000:]}")
    return elapsed


def run_limit(inv_dir: Path, rules: Path, names: list[str] | None = None) -> float:
    """A bare parallel `ssh HOST nft -f -` of the rendered rulesets: on the chokepoints (the first
    cut's limit), or on every host named (the floor of a full containment)."""
    inv = load_inventory(inv_dir)
    assert inv.lab is not None and inv.edge is not None
    ssh_dir = Path(inv.lab.state_dir) / "ssh"
    chokepoints = [inv.hosts[n] for n in names] if names is not None else [
        inv.edge, inv.hosts[inv.area("bench-x").gateway]]
    started = time.monotonic()
    procs = [subprocess.Popen(
        ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "ControlMaster=no",
         f"root@{h.address}", "nft", "-f", "-"], stdin=open(rules / f"{h.name}.nft", "rb"))  # noqa: SIM115
        for h in chokepoints]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("bare ssh baseline failed")
    return time.monotonic() - started


def run_floor(work: Path) -> float:
    playbook = work / "empty.yml"
    playbook.write_text("- name: Nothing\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    best = float("inf")
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], capture_output=True,
                       env=ENV, check=True)
        best = min(best, time.monotonic() - started)
    return best


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [10, 50, 110]
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"irm-bench-{n}-"))
        inv_dir, rules = work / "inv", work / "rules"
        inv_dir.mkdir()
        rules.mkdir()
        import yaml

        (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(n), sort_keys=False))
        try:
            lab_up = fresh_lab(inv_dir)
            first_cut, full = run_irm(inv_dir, work, prepared=True)
            hosts = keep_rendered(inv_dir, rules)
            fresh_lab(inv_dir)
            cold_cut, cold = run_irm(inv_dir, work)
            fresh_lab(inv_dir)
            _, full_plays = run_irm(inv_dir, work, "--no-warm")
            fresh_lab(inv_dir)
            limit = run_limit(inv_dir, rules)
            fresh_lab(inv_dir)
            every = run_limit(inv_dir, rules, hosts)
            floor = run_floor(work)
            fresh_lab(inv_dir)
            manual = run_manual(inv_dir, rules, hosts, work)
        finally:
            subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV,
                           check=False)
        row = {"hosts": n, "lab_up_s": round(lab_up, 2), "irm_first_cut_s": round(first_cut, 2),
               "irm_full_s": round(full, 2), "irm_plays_full_s": round(full_plays, 2),
               "irm_cold_first_cut_s": round(cold_cut, 2), "irm_cold_full_s": round(cold, 2),
               "limit_chokepoints_s": round(limit, 2),
               "bare_ssh_every_host_s": round(every, 2), "irm_full_vs_bare_every": round(full / every, 2),
               "ansible_playbook_floor_s": round(floor, 2), "manual_s": round(manual, 2),
               "first_cut_vs_limit": round(first_cut / limit, 2), "manual_vs_irm_full": round(manual / full, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]["irm_first_cut_s"]
    lines = ["| hosts in area | irm first cut | (b) bare ssh on chokepoints | first cut / (b) | first cut / "
             f"first cut at {rows[0]['hosts']} | (c) empty ansible-playbook | irm full containment | "
             "(a) plain ansible-playbook | (a) / irm full | (d) bare ssh, every host | irm full / (d) | "
             "irm cold: first cut, full | cold full / (d) | irm --no-warm (every stage a play) | "
             "--no-warm / irm full |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['hosts']} | {r['irm_first_cut_s']}s | {r['limit_chokepoints_s']}s "
                     f"| {r['first_cut_vs_limit']}x | {r['irm_first_cut_s'] / base:.2f}x "
                     f"| {r['ansible_playbook_floor_s']}s | {r['irm_full_s']}s "
                     f"| {r['manual_s']}s | {r['manual_vs_irm_full']}x | {r['bare_ssh_every_host_s']}s "
                     f"| {r['irm_full_vs_bare_every']}x | {r['irm_cold_first_cut_s']}s, {r['irm_cold_full_s']}s "
                     f"| {r['irm_cold_full_s'] / r['bare_ssh_every_host_s']:.2f}x | {r['irm_plays_full_s']}s "
                     f"| {r['irm_plays_full_s'] / r['irm_full_s']:.2f}x |")
    publish(markdown, "containment", lines)


if __name__ == "__main__":
    main()
