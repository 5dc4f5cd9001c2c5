"""Benchmark: resolving the warm path's options for N hosts by a play (what `irm contain` does today)
against resolving the same options in irm's own process through ansible-core's API (a design not built
into irm yet: docs/benchmarks.md, "Containment against the floor").

    .venv/bin/python bench/warm_resolve.py [N...]     (default 110 250; no root, no lab; about a minute)

For each N, a lab inventory with an area of N hosts (bench/make_inventory.py) and every one of its hosts,
the gateways and the edge:
  play        `playbooks/warm.yml` through irm's runner adapter (ansible-playbook under ansible-runner):
              the role's `warm` entry point, a set_fact per host (no host is contacted)
  in-process  the same playbook loaded with ansible-core's Playbook, VariableManager and Templar in this
              process: the set_fact's expression templated with each host's variables for that task
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
from orchestrator.core import paths, runner  # noqa: E402
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
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    init_plugin_loader([str(paths.COLLECTIONS)])
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[str(source)])
    vm = VariableManager(loader=loader, inventory=inv)
    play = Playbook.load(str(paths.PLAYBOOKS / "warm.yml"), variable_manager=vm, loader=loader).get_plays()[0]

    def flat(items: list[Any]) -> list[Any]:
        return [t for item in items for t in (flat(item.block) if hasattr(item, "block") else [item])]
    task = next(t for t in flat(play.compile()) if str(t.action).endswith("set_fact"))
    out = {}
    for name in hosts:
        variables = vm.get_vars(play=play, host=inv.get_host(name), task=task, include_hostvars=False)
        out[name] = WarmHost.model_validate(Templar(loader=loader, variables=variables).template(
            task.args["irm_warm"]))
    return out


def main() -> None:
    from bench.markdown import publish, take_markdown

    argv, markdown = take_markdown(sys.argv[1:])
    sizes = [int(a) for a in argv] or [110, 250]
    lines = ["| hosts in area | hosts resolved | play (today) | in-process | play / in-process | same options |",
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
