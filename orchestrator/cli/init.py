"""irm init: a commented starter inventory and irm.toml, to replace with one's own network."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.app import app, console
from orchestrator.core.errors import UserError
from orchestrator.core.safefile import write_files


@app.command("init")
def init(directory: Annotated[Path, typer.Argument(help="A new or empty directory.")]) -> None:
    """Write a starter: DIR/inventory (one area with two sub-areas and a VPN segment, a critical flow,
    approvers, the crisis cell, a detection source) and DIR/irm.toml pointing at it; `irm validate`
    passes on it. Example: irm init /etc/irm && IRM_CONFIG=/etc/irm/irm.toml irm validate"""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UserError(f"init: {directory} exists and is not an empty directory: nothing written")
    starter = resources.files("orchestrator") / "starter"
    files: dict[str, str] = {}

    def collect(node: resources.abc.Traversable, rel: str) -> None:
        for child in node.iterdir():
            name = f"{rel}{child.name}"
            if child.is_dir():
                collect(child, name + "/")
            elif not child.name.endswith((".pyc",)):
                files[name] = child.read_text(encoding="utf-8")
    collect(starter, "")
    inventory = (directory / "inventory").resolve()
    files["irm.toml"] = files["irm.toml"].replace("INVENTORY_DIR", str(inventory))
    by_dir: dict[str, dict[str, str]] = {}
    for name, text in files.items():
        folder, _, leaf = name.rpartition("/")
        by_dir.setdefault(folder, {})[leaf] = text
    for folder, content in sorted(by_dir.items()):
        write_files(directory / folder if folder else directory, content, "init")
    console.print(f"wrote a starter inventory in {inventory} and {directory / 'irm.toml'}: replace its addresses "
                  f"and names with your network's, add the approvers' keys, then: IRM_CONFIG={directory / 'irm.toml'} "
                  "irm validate")
