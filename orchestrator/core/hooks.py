"""The one documented seam through which code outside irm may change what irm plans or watch what it
runs: the test suite's fault injection (``tests/plugins/faults``) uses it, nothing in the product sets
it, and it is empty unless Python code in the same process registers something. Nothing here is read
from a file, the environment or the command line.

- ``plan``: functions called with every planned policy set (host -> policy) before it is checked or
  applied; each returns the set to use (a test plants a careless rule to prove the lockout check).
- ``management_check``: the lockout check itself (``core.checks.check_management`` unless replaced; a test
  replaces it to prove the dead-man timer on the hosts).
- ``node_event``: functions called with the playbook's file name and every event of a play that runs on
  an execution node, as it arrives (a test cuts the node off mid-stage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory
    from orchestrator.core.posture import Policy

PlanHook = Callable[[dict[str, "Policy"]], dict[str, "Policy"]]
ManagementCheck = Callable[["Inventory", dict[str, "Policy"]], list[str]]
NodeEventHook = Callable[[str, dict[str, Any]], None]


def _check_management(inv: Inventory, planned: dict[str, Policy]) -> list[str]:
    from orchestrator.core.checks import check_management

    return check_management(inv, planned)


@dataclass
class Hooks:
    plan: list[PlanHook] = field(default_factory=list)
    management_check: ManagementCheck = _check_management
    node_event: list[NodeEventHook] = field(default_factory=list)

    def planned(self, policies: dict[str, Policy]) -> dict[str, Policy]:
        for hook in self.plan:
            policies = hook(policies)
        return policies


HOOKS = Hooks()
