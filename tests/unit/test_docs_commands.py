"""Every irm command line the README and docs/ show names a command that exists and options that command
takes; every irm_* inventory key they name is one irm knows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from orchestrator.cli import entry  # noqa: F401  (registers every command on the app)
from orchestrator.cli.app import app
from orchestrator.core.inventory.model import KNOWN_KEYS
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# code spans and shell blocks: where a command line is shown (other fenced blocks hold trees and output)
_CODE = re.compile(r"```(?:sh|bash|console)\n.*?```|`[^`\n]+`", re.S)
_LINE = re.compile(r"(?:^|[\s(/$`])irm\s+([a-z][a-z-]*(?:[ \t]+[^\s|;&`)#]+)*)", re.M)


def _commands() -> dict[tuple[str, ...], Any]:
    """Every command by its path (typer carries its own click: groups are known by their commands)."""
    root = typer.main.get_command(app)
    out: dict[tuple[str, ...], Any] = {(): root}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                out[(*path, name)] = sub
                walk(sub, (*path, name))
    walk(root, ())
    return out


def _shown() -> list[tuple[Path, str]]:
    found = []
    for doc in DOCS:
        for code in _CODE.findall(doc.read_text()):
            for line in code.splitlines():
                found += [(doc, m.group(1)) for m in _LINE.finditer(line)]
    return found


def test_every_command_line_shown_exists_with_its_options() -> None:
    commands = _commands()
    problems = []
    for doc, line in _shown():
        words = [w.strip("[]") for w in line.split() if w.strip("[]")]
        path: tuple[str, ...] = ()
        while words and (*path, words[0]) in commands:
            path = (*path, words.pop(0))
        if not path:
            problems.append(f"{doc.name}: 'irm {line}': no command '{words[0]}'")
            continue
        cmd = commands[path]
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
        for word in words:
            option = word.split("=", 1)[0].rstrip(".,:")
            if option.startswith("-") and option not in known and not re.fullmatch(r"-\d+", option) \
                    and option not in ("-", "--"):
                problems.append(f"{doc.name}: 'irm {' '.join(path)}' has no option {option}")
    assert not problems, "\n".join(problems)
    assert len(_shown()) > 50  # the docs do show commands


def test_every_inventory_key_named_is_known() -> None:
    named = {k for doc in DOCS for k in re.findall(r"\birm_[a-z_]+[a-z]\b", doc.read_text())}
    plugins = ROOT / "collections" / "ansible_collections" / "irm" / "response" / "plugins"
    # not inventory keys: the collection's modules, module_utils and filters, and the wheel's name
    extra = {p.stem for p in plugins.rglob("irm_*.py")} | {"irm_orchestrator"}
    extra |= {n for f in plugins.glob("filter/*.py") for n in re.findall(r"^def (irm_\w+)", f.read_text(), re.M)}
    unknown = sorted(k for k in named if k not in KNOWN_KEYS and k not in extra and not k.startswith("irm_lab_"))
    assert not unknown, unknown


def test_every_relative_link_in_the_docs_points_at_a_file() -> None:
    problems = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                problems.append(f"{doc.relative_to(ROOT)}: link to {target}, which does not exist")
    assert not problems, "\n".join(problems)
    assert (ROOT / "README.md").read_text().count("\n") < 250  # the README is a front door, not the manual


def test_the_package_picture_is_the_code_s() -> None:
    """docs/packages.svg is what scripts/package_map.py draws from the imports now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("package_map", ROOT / "scripts" / "package_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "packages.svg").read_text() == module.svg(), \
        "docs/packages.svg is stale: run python scripts/package_map.py"
    graph = module.packages()
    assert graph["core"][1] == set() and "core" in graph["cli"][1]
