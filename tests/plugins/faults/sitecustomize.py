"""Fault injection for tests, loaded only by the ``irm`` processes a test starts with this directory
on PYTHONPATH (``tests.conftest.irm(..., faults={...})``); nothing of it ships in the product.

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
from typing import Any


def _install_node_cut(spec: str) -> None:
    import subprocess

    from orchestrator.core import runner

    playbook, _, command = spec.partition("|")
    original = runner._run_on_node
    done: list[bool] = []

    def run_on_node(ansible_runner: Any, node: Any, workdir: str, pb: Any, *args: Any) -> Any:
        collector = args[-1]

        def handler(event: dict[str, Any]) -> bool:
            kept = bool(collector(event))
            if pb.name == playbook and event.get("event") == "runner_on_ok" and not done:
                done.append(True)
                subprocess.run(command, shell=True, check=False)
            return kept

        return original(ansible_runner, node, workdir, pb, *args[:-1], handler)  # type: ignore[call-arg]

    runner._run_on_node = run_on_node  # type: ignore[assignment]


def _install() -> None:
    if os.environ.get("IRM_FAULT_NODE_CUT"):
        _install_node_cut(os.environ["IRM_FAULT_NODE_CUT"])
    extra_raw = os.environ.get("IRM_FAULT_EXTRA_RULES")
    skip = os.environ.get("IRM_FAULT_SKIP_LOCKOUT_CHECK") == "1"
    if not extra_raw and not skip:
        return
    from orchestrator.core.applier import StageApplier
    from orchestrator.core.posture import ChainPolicy, Rule

    if extra_raw:
        extra = {host: {chain: [Rule.model_validate(r) for r in rules] for chain, rules in chains.items()}
                 for host, chains in json.loads(extra_raw).items()}
        planned = StageApplier.planned

        def with_extra(self: Any, states: Any) -> Any:
            out = dict(planned(self, states))
            for host, chains in extra.items():
                if host in out:
                    update = {chain: ChainPolicy(rules=[*rules, *getattr(out[host], chain).rules],
                                                 default=getattr(out[host], chain).default)
                              for chain, rules in chains.items() if getattr(out[host], chain).rules}
                    out[host] = out[host].model_copy(update=update)
            return out

        StageApplier.planned = with_extra  # type: ignore[method-assign]
    if skip:
        StageApplier.check_lockout = lambda self, planned: None  # type: ignore[method-assign]


_install()
