"""Benchmark: resolving the warm path's options for N hosts by the role's play (what `irm contain` did
before, and does when the other way fails) against resolving them without a play (`core.warm_resolve`:
ansible-core's API in a process of irm's own, what `irm contain` does now).

    .venv/bin/python bench/warm_resolve.py [N...]     (default 110 250; no root, no lab; about a minute)

For each N, a lab inventory with an area of N hosts (bench/make_inventory.py) and every one of its hosts,
the gateways and the edge:
  play        `playbooks/warm.yml` through irm's runner adapter (ansible-playbook under ansible-runner):
              the role's `warm` entry point, a set_fact per host (no host is contacted)
  in-process  `core.warm_resolve.resolve`: the same playbook loaded with ansible-core's Playbook,
              VariableManager and Templar in a Python process of irm's own (its start-up included), the
              set_fact's expression templated with each host's variables for that task
Both must give the same options for every host (compared as irm's `WarmHost` models), or the bench
stops. Prints seconds and the ratio; asserts nothing about time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))

from bench.make_inventory import inventory  # noqa: E402
from orchestrator.core import runner, warm_resolve  # noqa: E402
from orchestrator.core.warm import WarmHost  # noqa: E402


def _hosts(inv: dict[str, Any]) -> list[str]:
    names: list[str] = []

    def walk(group: dict[str, Any]) -> None:
        names.extend((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            walk(child or {})
    walk(inv["all"])
    return sorted(set(names))


def by_play(source: Path, hosts: list[str]) -> dict[str, WarmHost]:
    result = runner.run_playbook("warm", source, extravars={"irm_targets": ",".join(hosts)})
    return {h: WarmHost.model_validate(r.facts["irm_warm"]) for h, r in result.hosts.items() if "irm_warm" in r.facts}


def in_process(source: Path, hosts: list[str]) -> dict[str, WarmHost]:
    return {h: WarmHost.model_validate(v) for h, v in warm_resolve.resolve(str(source), hosts).items()}


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [110, 250]
    lines = ["| hosts in area | hosts resolved | play | without a play (irm contain) | play / without | same options |",
             "|---|---|---|---|---|---|"]
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "hosts.yml"
            data = inventory(n)
            source.write_text(yaml.safe_dump(data, sort_keys=False))
            hosts = [h for h in _hosts(data) if h not in ("soc", "inet-web")]
            started = time.perf_counter()
            played = by_play(source, hosts)
            play_s = time.perf_counter() - started
            started = time.perf_counter()
            resolved = in_process(source, hosts)
            own_s = time.perf_counter() - started
        same = played == resolved and len(played) == len(hosts)
        if not same:
            differ = sorted(h for h in hosts if played.get(h) != resolved.get(h))
            sys.exit(f"{n} hosts: the options differ for {differ[:5]}")
        print(n, len(hosts), f"{play_s:.2f}s", f"{own_s:.2f}s", flush=True)
        lines.append(f"| {n} | {len(hosts)} | {play_s:.2f} s | {own_s:.2f} s | {play_s / own_s:.1f}x | yes |")
    publish(markdown, "warm_resolve", lines)


if __name__ == "__main__":
    main()
