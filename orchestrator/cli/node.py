"""irm node check / install: execution nodes run exactly what the controller runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli.app import console, err_console, node_app
from orchestrator.cli.options import DEFAULT_INVENTORY, InventoryOpt, JsonOpt, load
from orchestrator.core.errors import CheckFailed, UserError

if TYPE_CHECKING:
    from orchestrator.core.runner import ExecutionNode


def _nodes(inventory: Path, names: list[str] | None) -> list[tuple[str, ExecutionNode]]:
    from orchestrator.core import nodes

    inv = load(inventory)
    chosen = names or [h.name for h in inv.execution_nodes]
    if not chosen:
        raise UserError(f"no execution node in {inv.source} (group execution_nodes)")
    return [(name, nodes.execution_node(inv.host(name))) for name in chosen]


@node_app.command("check")
def node_check(
    host: Annotated[list[str] | None, typer.Argument(help="Execution nodes (default: every one).")] = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    clean: Annotated[bool, typer.Option("--clean", help="First remove the job directories that runs killed on "
                                        "the node left there.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reach each node and compare its ansible-core, ansible, ansible-runner and irm's files with the
    controller's, and look for job directories left by killed runs. Exit 1 when one differs or cannot be
    reached.

    Example: irm node check z-node --clean
    """
    from orchestrator.core import nodes

    failed = False
    report = []  # --json: [{node, ok, problems, removed}]
    for name, node in _nodes(inventory, host):
        removed = nodes.clean_jobs(node) if clean else []
        problems = nodes.check(node)
        failed |= bool(problems)
        report.append({"node": name, "ok": not problems, "problems": problems, "removed": removed})
        if as_json:
            continue
        for gone in removed:
            console.print(f"{name}: removed {gone}")
        for line in problems or [f"{name}: reachable; runs the controller's versions and irm's files"]:
            (err_console if problems else console).print(line)
    if as_json:
        print(json.dumps(report, indent=1))
    if failed:
        raise CheckFailed()


@node_app.command("install")
def node_install(
    host: Annotated[str, typer.Argument(help="The execution node.")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Copy the controller's virtualenv and irm's files to the node over SSH (no package index, no
    Internet), at the same paths, then check it.

    Example: irm node install z-node
    """
    from orchestrator.core import nodes

    ((_, node),) = _nodes(inventory, [host])
    console.print(nodes.install(node))
