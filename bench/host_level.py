"""Benchmark: the executor settings tried for the host-level stages, in one run on the same lab size.

    .venv/bin/python bench/host_level.py [N] [--mitogen DIR]     (default N=50; needs root, builds labs)

Each variant runs `irm contain --area bench-x --yes --no-loop` on a freshly built lab of N area hosts
(bench/make_inventory.py) with only Ansible's environment changed:
  default        irm's ansible.cfg (linear strategy, forks 8, SSH pipelining, ControlPersist)
  forks 20       ANSIBLE_FORKS=20
  free           ANSIBLE_STRATEGY=free (no host waits for the others between tasks)
  free, forks 20 both
  mitogen        Mitogen's mitogen_linear strategy (only with --mitogen DIR: a directory holding the
                 unpacked `mitogen` wheel, e.g. `pip download mitogen==0.3.54` then unzip; it is not a
                 dependency of irm)
Prints full containment (the containment_finished event) and the vectors stage (every area host)
for each, and the controller's CPU time (irm and its children: ansible-playbook, its forks, ssh).
Asserts nothing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from bench.make_inventory import inventory  # noqa: E402
from orchestrator.core.journal import Journal  # noqa: E402

ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}


def irm(*args: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, env={**ENV, **(env or {})},
                          cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"irm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def variant(inv_dir: Path, work: Path, name: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(full containment s, vectors stage s, controller CPU s) on a fresh lab."""
    subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV, check=False)
    irm("lab", "up", "-i", str(inv_dir))
    journal = work / f"journal-{name.replace(' ', '-').replace(',', '')}.db"
    irm("incident", "open", "--worm", "Bench.Worm", "--vector", "tcp/4445", "--journal", str(journal))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    irm("contain", "--area", "bench-x", "--yes", "--no-loop", "--confirm-timeout", "300", "--journal",
        str(journal), "-i", str(inv_dir), "--no-warm", env=env)  # the plays' executor is what is measured
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with Journal.reader(journal) as j:
        total = next(float(e["detail"]["total_seconds"]) for e in j.timeline.of(1)
                     if e["kind"] == "containment_finished")
        vectors = next(s for s in j.stages.of(1, "bench-x") if s.name == "vectors")
        stage = (datetime.fromisoformat(str(vectors.ended_at)) - datetime.fromisoformat(vectors.started_at))
    return total, stage.total_seconds(), cpu


def main() -> None:
    from bench.markdown import publish, take_markdown

    args, markdown = take_markdown(sys.argv[1:])
    mitogen = None
    if "--mitogen" in args:
        mitogen = Path(args[args.index("--mitogen") + 1]).resolve()
        del args[args.index("--mitogen"):args.index("--mitogen") + 2]
    n = int(args[0]) if args else 50
    variants: dict[str, dict[str, str]] = {
        "default": {}, "forks 20": {"ANSIBLE_FORKS": "20"}, "free": {"ANSIBLE_STRATEGY": "free"},
        "free, forks 20": {"ANSIBLE_STRATEGY": "free", "ANSIBLE_FORKS": "20"},
    }
    if mitogen is not None:
        variants["mitogen"] = {"PYTHONPATH": str(mitogen), "ANSIBLE_STRATEGY": "mitogen_linear",
                               "ANSIBLE_STRATEGY_PLUGINS": str(mitogen / "ansible_mitogen/plugins/strategy")}
    with tempfile.TemporaryDirectory(prefix="irm-bench-host-") as tmp:
        work = Path(tmp)
        inv_dir = work / "inventory"
        inv_dir.mkdir()
        (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(n), sort_keys=False))
        results = {}
        try:
            for name, env in variants.items():
                results[name] = variant(inv_dir, work, name, env)
                print(f"  {name}: done", file=sys.stderr)
        finally:
            subprocess.run([str(BIN / "irm"), "lab", "down", "-i", str(inv_dir)], capture_output=True, env=ENV,
                           check=False)
    base = results["default"][0]
    lines = [f"| {n} area hosts | full containment | vectors stage | controller CPU | full / default |",
             "|---|---|---|---|---|"]
    for name, (total, stage, cpu) in results.items():
        lines.append(f"| {name} | {total:.1f} s | {stage:.1f} s | {cpu:.1f} s | {total / base:.2f}x |")
    publish(markdown, "host_level", lines)


if __name__ == "__main__":
    main()
