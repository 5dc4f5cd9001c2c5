"""The documented seam (``core.hooks``): empty in the product, used by the tests' fault injection."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.core.hooks import HOOKS, Hooks
from tests.conftest import ROOT


def test_nothing_in_the_product_registers_a_hook() -> None:
    fresh = Hooks()
    assert HOOKS.plan == fresh.plan == [] and HOOKS.node_event == []
    assert HOOKS.management_check is fresh.management_check
    setters = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "orchestrator").rglob("*.py") if p.name != "hooks.py"
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"HOOKS\.\w+(\.append\(|\s*=[^=])", line)]
    assert setters == []


def test_a_plan_hook_changes_the_plan_and_the_management_check_can_be_replaced() -> None:
    hooks: Any = Hooks()  # stand-in values: the seam passes them through as they are
    seen: list[dict[str, Any]] = []

    def plant(planned: dict[str, Any]) -> dict[str, Any]:
        seen.append(planned)
        return {**planned, "extra": "policy"}

    hooks.plan.append(plant)
    assert hooks.planned({"gw-x": "p"}) == {"gw-x": "p", "extra": "policy"} and seen == [{"gw-x": "p"}]
    hooks.management_check = lambda inv, planned: ["cut"]
    assert hooks.management_check(None, {}) == ["cut"]


def test_the_fault_plugin_uses_the_seam_and_no_private_name() -> None:
    plugin = (ROOT / "tests" / "plugins" / "faults" / "sitecustomize.py").read_text()
    assert "orchestrator.core.hooks" in plugin
    assert not re.search(r"\b\w+\._\w+\s*=|StageApplier\.\w+\s*=", plugin)
