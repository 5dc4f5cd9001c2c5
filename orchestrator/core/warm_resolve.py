"""The warm path's options, resolved without a play: ``playbooks/warm.yml`` loaded with ansible-core's own
``Playbook``, ``VariableManager`` and ``Templar``, and the role's ``warm`` expression templated with each
host's variables for that task, exactly the values its ``set_fact`` would give (``bench/warm_resolve.py``
compares them host for host), in about a third of the play's time.

It runs in a process of its own (``python -m orchestrator.core.warm_resolve``, the request on stdin, the
answer as JSON on stdout): Ansible's loaders and its warnings are process-wide, and the run that asks is
in the middle of its stages. ``resolve`` raises when that process fails; the warm path then resolves by
the play, as before.

What it resolved is kept (``cached``), as the inventory's snapshot is (``inventory.snapshot``): only for a
static inventory with no vault value and no template that calls anything, keyed by everything the
values come from (the inventory's files, ansible.cfg, the Ansible environment, irm's version, and the
files of ``playbooks/`` and of the role), and given back only for hosts whose address is the one the
inventory, loaded anew by the run, gives. ``irm prepare`` resolves every Linux host ahead; a run whose
options are all kept starts its first stage warm, with no play and no resolving process.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.core.errors import IrmError

TIMEOUT = 300.0
ROLE = Path("ansible_collections/irm/response/roles/firewall_policy")


def _key(inventory: str) -> str | None:
    """What the options resolved for ``inventory`` are kept under, or None when they must not be kept."""
    from orchestrator.core import paths
    from orchestrator.core.inventory import snapshot

    source = Path(inventory)
    inv_key = snapshot.key(source)
    if inv_key is None or not snapshot.static_content(source):
        return None
    digest = hashlib.sha256(inv_key.encode())
    files = [paths.ANSIBLE_CFG, *sorted(p for p in paths.PLAYBOOKS.rglob("*") if p.is_file()),
             *sorted(p for p in (paths.COLLECTIONS / ROLE).rglob("*") if p.is_file())]
    try:
        for f in files:
            digest.update(f"{f}\0".encode() + hashlib.sha256(f.read_bytes()).digest())
    except OSError:
        return None
    return digest.hexdigest()


def cached(inventory: str, hosts: list[str], addresses: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    """The kept options of every one of ``hosts``, or None when any is missing, failed or was resolved for
    another address than ``addresses`` gives it (the inventory as the run loaded it)."""
    from orchestrator.core.inventory import snapshot

    key = _key(inventory)
    kept = snapshot.load("warm", Path(inventory), key) if key else None
    if not isinstance(kept, dict):
        return None
    out = {h: kept.get(h) for h in hosts}
    if any(not isinstance(v, dict) or "error" in v or str(v.get("address")) != addresses.get(h)
           for h, v in out.items()):
        return None
    return {h: dict(v) for h, v in out.items() if isinstance(v, dict)}


def resolve(inventory: str, hosts: list[str], addresses: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """host -> the options the role's ``warm`` entry point resolves (``{"error": why}`` for a host whose
    expression failed): the kept ones when every host's are (``cached``, given ``addresses``), else
    resolved in a process of their own and kept. Raises ``IrmError`` when the resolving process fails."""
    from orchestrator.core.inventory import snapshot
    from orchestrator.core.runner import runner_env

    if addresses is not None:
        found = cached(inventory, hosts, addresses)
        if found is not None:
            return found
    key = _key(inventory)  # before resolving: what the values come from, as they were read

    try:
        proc = subprocess.run([sys.executable, "-m", "orchestrator.core.warm_resolve"],
                              input=json.dumps({"inventory": inventory, "hosts": hosts}), capture_output=True,
                              text=True, timeout=TIMEOUT, env={**os.environ, **runner_env()}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IrmError(f"the options could not be resolved in-process ({exc})") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise IrmError(f"the options could not be resolved in-process (exit {proc.returncode}: {last})")
    try:
        answer = json.loads(proc.stdout)["hosts"]
    except (ValueError, KeyError, TypeError):
        raise IrmError("the options could not be resolved in-process (no answer)") from None
    resolved = {str(h): dict(v) for h, v in answer.items() if isinstance(v, dict)}
    if key is not None and key == _key(inventory):  # nothing changed while resolving
        kept = snapshot.load("warm", Path(inventory), key)
        snapshot.store("warm", Path(inventory), key, {**(kept if isinstance(kept, dict) else {}), **{
            h: v for h, v in resolved.items() if "error" not in v}})
    return resolved


def _resolved(inventory: str, hosts: list[str]) -> dict[str, dict[str, Any]]:
    # as irm loads the inventory (core.inventory.load): a source that does not parse is an error, and a key
    # given twice in one mapping too
    os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
    os.environ["ANSIBLE_DUPLICATE_YAML_DICT_KEY"] = "error"
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    from orchestrator.core import paths
    from orchestrator.core.inventory.load import plain, vault_secrets

    init_plugin_loader([str(paths.COLLECTIONS)])
    loader = DataLoader()
    vault_secrets(loader)
    inv = InventoryManager(loader=loader, sources=[inventory])
    vm = VariableManager(loader=loader, inventory=inv)
    play = Playbook.load(str(paths.PLAYBOOKS / "warm.yml"), variable_manager=vm, loader=loader).get_plays()[0]

    def flat(items: list[Any]) -> list[Any]:
        return [t for item in items for t in (flat(item.block) if hasattr(item, "block") else [item])]
    task = next(t for t in flat(play.compile()) if str(t.action).endswith("set_fact"))
    out: dict[str, dict[str, Any]] = {}
    for name in hosts:
        host = inv.get_host(name)
        if host is None:
            out[name] = {"error": f"{name} is not in the inventory"}
            continue
        try:
            variables = vm.get_vars(play=play, host=host, task=task, include_hostvars=False)
            out[name] = plain(Templar(loader=loader, variables=variables).template(task.args["irm_warm"]))
        except AnsibleError as exc:
            out[name] = {"error": str(exc).splitlines()[0][:300]}
    return out


def main() -> None:
    request = json.loads(sys.stdin.read())
    answer = io.StringIO()
    with contextlib.redirect_stdout(sys.stderr):  # Ansible's own output never mixes with the answer
        found = _resolved(str(request["inventory"]), [str(h) for h in request["hosts"]])
    answer.write(json.dumps({"hosts": found}))
    sys.stdout.write(answer.getvalue())


if __name__ == "__main__":
    main()
