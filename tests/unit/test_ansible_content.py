"""The Ansible content irm ships: every playbook passes syntax-check, every role declares its inputs."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.conftest import BIN, COLLECTION, LAB_INVENTORY, ROOT

PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))
ROLES = sorted(p for p in (COLLECTION / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_syntax(playbook: object) -> None:
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(LAB_INVENTORY), str(playbook)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_declares_every_default_in_its_argument_specs(role: object) -> None:
    from pathlib import Path

    role = Path(str(role))
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    declared = {k for entry in specs.values() for k in entry.get("options", {})}
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    assert set(defaults) <= declared, set(defaults) - declared
    assert all(k.startswith(f"{role.name}_") for k in defaults)


def test_windows_paths_exist_for_host_level_stages() -> None:
    for role in ("firewall_policy", "removable_media"):
        tasks = yaml.safe_load((COLLECTION / "roles" / role / "tasks" / "windows.yml").read_text())
        modules = {k for task in tasks for k in task if "." in k} - CONTROLLER_ONLY
        assert modules and all(m.startswith(("ansible.windows.", "community.windows.")) for m in modules), modules


# Actions that run on the controller, never on the host: any OS's tasks may use them.
CONTROLLER_ONLY = {"ansible.builtin.fail", "ansible.builtin.assert", "ansible.builtin.set_fact",
                   "ansible.builtin.import_tasks"}


def _tasks(node: object) -> list[dict[str, object]]:
    """Every play and task in a loaded YAML file, blocks included."""
    out: list[dict[str, object]] = []
    if isinstance(node, list):
        for item in node:
            out += _tasks(item)
    elif isinstance(node, dict):
        out.append(node)
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            out += _tasks(node.get(key))
    return out


def test_the_collection_s_modules_and_roles_are_called_by_fqcn() -> None:
    modules = {p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py")}
    roles = {p.name for p in (COLLECTION / "roles").iterdir()}
    files = [*PLAYBOOKS, *(COLLECTION / "roles").rglob("tasks/*.yml"), *(ROOT / "molecule").rglob("*.yml")]
    bare: list[str] = []
    for f in files:
        for task in _tasks(yaml.safe_load(f.read_text())):
            bare += [f"{f.name}: {k}" for k in task if k in modules]
            for key in ("ansible.builtin.import_role", "ansible.builtin.include_role"):
                spec = task.get(key)
                if isinstance(spec, dict) and spec.get("name") in roles:
                    bare.append(f"{f.name}: role {spec['name']}")
            listed = task.get("roles")
            for r in listed if isinstance(listed, list) else []:
                if (r.get("role") if isinstance(r, dict) else r) in roles:
                    bare.append(f"{f.name}: role {r}")
    assert modules and roles and not bare
