"""Where each host's plays run: on the controller, or on the execution node of its area.

``route`` wraps a ``PlaybookRunner``: a play whose targets are all managed from the SOC runs as before;
one with hosts behind execution nodes is split per node (each part gets only its own hosts' targets and
per-host data), the parts run at once (``transmit | ssh NODE worker | process`` for a node), and their
per-host results are merged into one ``RunResult``, so stages, the journal and the live view see one
play. A part that could not run at all marks its hosts unreachable with the reason (the others' results
stand); when no part ran, the run raises as a local one does.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestrator.core import runner
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.inventory import Host, Inventory
from orchestrator.core.nodes import execution_node
from orchestrator.core.stream import EventStream, once_per_task

# extra vars that name the play's hosts (comma-separated patterns of host names)
TARGET_VARS = ("irm_targets", "irm_targets_linux", "irm_targets_windows", "irm_media_targets_linux",
               "irm_media_targets_windows", "irm_boundaries_linux")
NONE = "all:!all"


def executor(inv: Inventory, host: str) -> Host | None:
    """The execution node that runs plays on ``host`` (None: the controller)."""
    known = inv.hosts.get(host)
    return inv.manager_of(known) if known is not None else None


def split(inv: Inventory, hosts: list[str]) -> dict[str | None, list[str]]:
    """``hosts`` per executor (None: the controller), in order."""
    out: dict[str | None, list[str]] = {}
    for h in hosts:
        node = executor(inv, h)
        out.setdefault(node.name if node else None, []).append(h)
    return out


def unreachable_nodes(inv: Inventory, hosts: list[str], timeout: int = 10) -> list[str]:
    """The execution nodes that would run plays on ``hosts`` and do not accept a new SSH session now,
    each with why."""
    names = sorted(n for n in split(inv, hosts) if n is not None)

    def down(name: str) -> str | None:
        node = execution_node(inv.hosts[name])
        try:
            proc = subprocess.run(node.ssh_command("true"), capture_output=True, timeout=timeout + 5, check=False)
        except subprocess.TimeoutExpired:
            return f"{name}: no answer within {timeout + 5}s"
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        return None if proc.returncode == 0 else f"{name}: {why[-1] if why else f'ssh ended with {proc.returncode}'}"

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return [r for r in pool.map(down, names) if r]


def _targets(extravars: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for var in TARGET_VARS:
        value = extravars.get(var)
        if isinstance(value, str) and value != NONE:
            seen.update(dict.fromkeys(h for h in value.split(",") if h))
    return list(seen)


def _part(inv: Inventory, extravars: dict[str, Any], mine: set[str], node: str | None) -> dict[str, Any]:
    """The extra vars of one part: its own targets, and per-host data for its hosts only (a node gets no
    more than its run needs). Endpoints reached through this node are reached directly there."""
    out: dict[str, Any] = {}
    for key, value in extravars.items():
        if key in TARGET_VARS and isinstance(value, str):
            out[key] = ",".join(h for h in value.split(",") if h in mine) or NONE
        elif isinstance(value, dict) and value and all(k in inv.hosts for k in value):
            out[key] = {h: v for h, v in value.items() if h in mine}
        else:
            out[key] = value
    reach = out.get("irm_reach")
    if node is not None and isinstance(reach, dict):
        out["irm_reach"] = {h: [{k: v for k, v in e.items() if k != "through"}
                                if isinstance(e, dict) and (e.get("through") or {}).get("name") == node else e
                                for e in es] for h, es in reach.items()}
    return out


def route(inv: Inventory, run: runner.PlaybookRunner = runner.run_playbook) -> runner.PlaybookRunner:
    """``run``, sending each host's part of a play to the execution node that manages it. An inventory
    without execution nodes gets ``run`` itself."""
    if not inv.execution_nodes:
        return run

    def routed(playbook: str | Path, inventory: str | Path, *, extravars: dict[str, Any] | None = None,
               check: bool = False, diff: bool = False, limit: str | None = None, tags: list[str] | None = None,
               forks: int | None = None, events: EventStream | None = None,
               node: runner.ExecutionNode | None = None) -> runner.RunResult:
        ev = extravars or {}
        parts = split(inv, _targets(ev))
        if node is not None or not any(parts):  # a node chosen by the caller, or only the controller's hosts
            return run(playbook, inventory, extravars=extravars, check=check, diff=diff, limit=limit, tags=tags,
                       forks=forks, events=events, **({"node": node} if node is not None else {}))
        shared = once_per_task(events) if events is not None and len(parts) > 1 else events

        def one(node: str | None, hosts: list[str]) -> runner.RunResult | RunnerError:
            kwargs: dict[str, Any] = {"extravars": _part(inv, ev, set(hosts), node), "check": check, "diff": diff,
                                      "limit": limit, "tags": tags, "forks": forks, "events": shared}
            if node is not None:
                kwargs["node"] = execution_node(inv.hosts[node])
            try:
                return run(playbook, inventory, **kwargs)
            except RunnerError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            results = list(pool.map(lambda item: one(*item), parts.items()))
        return merge(str(playbook), check, list(zip(parts.items(), results, strict=True)))

    return routed


def merge(playbook: str, check: bool,
          parts: list[tuple[tuple[str | None, list[str]], runner.RunResult | RunnerError]]) -> runner.RunResult:
    """One result from the parts' results. A part that could not run leaves its hosts unreachable,
    with the reason; if no part ran, the run raises."""
    errors = [(node, r) for (node, _), r in parts if isinstance(r, RunnerError)]
    if len(errors) == len(parts):
        raise RunnerError("; ".join(str(e) for _, e in errors))
    hosts: dict[str, runner.HostResult] = {}
    events: list[dict[str, Any]] = []
    statuses, codes, vias, read_back = [], [], [], set()
    name = Path(playbook).name
    for (node, targets), r in parts:
        if isinstance(r, RunnerError):
            where = f"on the execution node {node}" if node else "on the controller"
            for h in targets:
                hosts[h] = runner.HostResult(host=h, unreachable=1, failures=[f"the play could not run {where}: {r}"])
            statuses.append("failed")
            continue
        name = r.playbook
        hosts.update(r.hosts)
        events += [{**e, "node": node} if node else e for e in r.events]
        statuses.append(r.status)
        codes.append(r.rc or 0)
        vias.append(r.via)
        read_back |= set(r.read_back)
    status = next((s for s in statuses if s != "successful"), "successful")
    rc = max(codes, default=0)
    return runner.RunResult(playbook=name, status=status, rc=rc or (1 if errors else 0), check=check, hosts=hosts,
                            events=events, via="+".join(dict.fromkeys(vias)) or "ansible-playbook",
                            read_back=sorted(read_back))


def node_problems(inv: Inventory, hosts: list[str]) -> list[str]:
    """One line per execution node these hosts' plays need that does not answer now."""
    return [f"execution node {d}: its area's plays cannot run; nothing was applied (bring the node back, or "
            "run its area from the SOC where a route exists: --from-soc)" for d in unreachable_nodes(inv, hosts)]


def require_nodes(inv: Inventory, hosts: list[str]) -> None:
    """Refuse, naming them, when the execution nodes these hosts' plays need do not answer."""
    problems = node_problems(inv, hosts)
    if problems:
        raise UserError(*problems)
