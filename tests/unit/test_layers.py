"""The package layering docs/architecture.md states: the core imports no phase, no CLI and
not the lab; a phase imports the core and earlier phases' tables, never the CLI or the lab; the lab
imports only the core. Read from the source's imports (every one, lazy ones included), and every module
imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"
PHASES = ("preparation", "identification", "containment", "remediation", "recovery", "aftermath")
# what each top-level package may import (besides itself and the stdlib/third parties)
ALLOWED = {
    "core": set(),
    "crisis": {"core"},  # the crisis cell's directory and the notifications sent to it
    # validate loads plan files as remediate does; prepare checks the detection sources
    "preparation": {"core", "crisis", "identification", "remediation"},
    # the detection sources, irm identify, irm status's reading; an opened incident is told to the cell
    "identification": {"core", "crisis"},
    # each phase tells the crisis cell of its outcomes (crisis.notify listens to its event stream)
    "containment": {"core", "crisis"},
    "remediation": {"core", "crisis"},
    "recovery": {"core", "crisis", "remediation"},  # recovery re-verifies the remediated hosts
    "aftermath": {"core", "containment", "recovery", "preparation"},  # both phase tables; the map's drawing
    # irm watch: the signed policy, its trigger, and containment run by the watcher
    "watch": {"core", "crisis", "identification", "containment"},
    "lab": {"core"},
    # the live board: the journal, irm status's reading, the report and the map's drawing
    "board": {"core", "identification", "aftermath", "preparation"},
    "cli": {"core", "crisis", *PHASES, "watch", "lab", "board"},
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(path: Path) -> set[str]:
    """The top-level orchestrator packages a module imports, anywhere in it."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "orchestrator" and len(parts) > 1 and parts[1] in ALLOWED:
                out.add(parts[1])
    return out


def _package(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 and rel[0] in ALLOWED else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_what_its_layer_may(path: Path) -> None:
    package = _package(path)
    if package is None:  # orchestrator/__init__.py, __main__.py: the entry points
        assert _imported(path) <= {"cli"}
        return
    wrong = _imported(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(PACKAGE)} ({package}) imports {sorted(wrong)}"


def test_every_package_of_the_layering_exists() -> None:
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == set(ALLOWED)


def test_every_module_imports_on_its_own() -> None:
    names = [".".join(("orchestrator", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
             for p in _modules() if p.name != "__main__.py"]
    script = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    failed = [n for n in names if subprocess.run([sys.executable, "-c", script, n], capture_output=True,
                                                 cwd=PACKAGE.parent).returncode != 0]
    assert not failed


def test_the_ansible_content_is_where_the_runner_looks() -> None:
    from orchestrator.core import paths

    assert paths.PLAYBOOKS.is_dir() and paths.ANSIBLE_CFG.is_file()
    assert paths.playbook("reach").is_file()


def test_the_scripts_import_what_exists() -> None:
    """The shell scripts embed Python (the demo reads the inventory): every name they import exists."""
    import importlib
    import re

    found = []
    for script in sorted((PACKAGE.parent / "scripts").glob("*.sh")):
        for module, names in re.findall(r"from (orchestrator[\w.]*) import ([\w, ]+)", script.read_text()):
            found.append(module)
            imported = importlib.import_module(module)
            assert all(hasattr(imported, n.strip()) for n in names.split(",")), (script.name, module, names)
    assert found
