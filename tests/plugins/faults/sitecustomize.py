"""Fault injection for tests, loaded only by the ``irm`` processes a test starts with this directory
on PYTHONPATH (``tests.conftest.irm(..., faults={...})``); nothing of it ships in the product. It goes
through irm's documented seam, ``orchestrator.core.hooks``, never through irm's private names.

- IRM_FAULT_EXTRA_RULES: JSON {host: {chain: [rule, ...]}} prepended to every planned policy that has
  rules in that chain, so a test can plan a ruleset that cuts management (a careless rule) and prove the
  lockout check refuses it (a policy with no rule, the host before containment, stays as it is).
- IRM_FAULT_SKIP_LOCKOUT_CHECK=1: the lockout check passes whatever the plan, so a test can prove the
  dead-man timer on the hosts rolls such a ruleset back.
- IRM_FAULT_NODE_CUT="PLAYBOOK|COMMAND": during a run of PLAYBOOK on an execution node, COMMAND runs
  once, as soon as the first host reports a task done (so a test can cut the node off mid-stage).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any


def _node_cut(spec: str) -> Any:
    playbook, _, command = spec.partition("|")
    done: list[bool] = []

    def hook(name: str, event: dict[str, Any]) -> None:
        if name == playbook and event.get("event") == "runner_on_ok" and not done:
            done.append(True)
            subprocess.run(command, shell=True, check=False)

    return hook


def _extra_rules(raw: str) -> Any:
    from orchestrator.core.posture import ChainPolicy, Rule

    extra = {host: {chain: [Rule.model_validate(r) for r in rules] for chain, rules in chains.items()}
             for host, chains in json.loads(raw).items()}

    def hook(planned: dict[str, Any]) -> dict[str, Any]:
        out = dict(planned)
        for host, chains in extra.items():
            if host in out:
                update = {chain: ChainPolicy(rules=[*rules, *getattr(out[host], chain).rules],
                                             default=getattr(out[host], chain).default)
                          for chain, rules in chains.items() if getattr(out[host], chain).rules}
                out[host] = out[host].model_copy(update=update)
        return out

    return hook


def _install() -> None:
    if not any(os.environ.get(k) for k in ("IRM_FAULT_NODE_CUT", "IRM_FAULT_EXTRA_RULES",
                                           "IRM_FAULT_SKIP_LOCKOUT_CHECK")):
        return
    from orchestrator.core.hooks import HOOKS

    if os.environ.get("IRM_FAULT_NODE_CUT"):
        HOOKS.node_event.append(_node_cut(os.environ["IRM_FAULT_NODE_CUT"]))
    if os.environ.get("IRM_FAULT_EXTRA_RULES"):
        HOOKS.plan.append(_extra_rules(os.environ["IRM_FAULT_EXTRA_RULES"]))
    if os.environ.get("IRM_FAULT_SKIP_LOCKOUT_CHECK") == "1":
        HOOKS.management_check = lambda inv, planned: []


_install()
