"""The phase tables are the whole truth about a stage: no code outside them branches on a stage's name
(a comparison of a stage or step name with a literal name), read from the code's syntax tree."""

from __future__ import annotations

import ast

from orchestrator.containment.table import CONTAINMENT
from orchestrator.recovery.table import RECOVERY
from tests.conftest import ROOT

NAMES = {p.name for p in (*CONTAINMENT, *RECOVERY)} | {p.per_sub_area for p in (*CONTAINMENT, *RECOVERY)
                                                     if p.per_sub_area}
TABLES = {ROOT / "orchestrator" / "containment" / "table.py", ROOT / "orchestrator" / "recovery" / "table.py"}
# what names a stage or a step in the code: spec.name, step.name, stage, kind...
_STAGE_LIKE = {"stage", "step", "kind", "name"}


def _names_a_stage(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "name" and not (isinstance(node.value, ast.Name) and node.value.id in ("seg", "host"))
    return isinstance(node, ast.Name) and node.id in _STAGE_LIKE


def _literals(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def test_no_code_outside_the_tables_compares_a_stage_name_with_a_literal() -> None:
    found = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        if path in TABLES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            if any(_names_a_stage(s) for s in sides) and any(_literals(s) & NAMES for s in sides):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_the_check_sees_a_branch_on_a_stage_name() -> None:
    """The negative control: the same check over a line that branches on a stage's name finds it."""
    node = ast.parse('if spec.name == "internet_cut": pass').body[0]
    assert isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
    sides = [node.test.left, *node.test.comparators]
    assert any(_names_a_stage(s) for s in sides) and any(_literals(s) & NAMES for s in sides)
