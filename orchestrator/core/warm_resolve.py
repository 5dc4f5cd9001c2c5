"""The warm path's options, resolved without a play: ``playbooks/warm.yml`` loaded with ansible-core's own
``Playbook``, ``VariableManager`` and ``Templar``, and the role's ``warm`` expression templated with each
host's variables for that task, exactly the values its ``set_fact`` would give (``bench/warm_resolve.py``
compares them host for host), in about a third of the play's time.

It runs in a process of its own (``python -m orchestrator.core.warm_resolve``, the request on stdin, the
answer as JSON on stdout): Ansible's loaders and its warnings are process-wide, and the run that asks is
in the middle of its stages. ``resolve`` raises when that process fails; the warm path then resolves by
the play, as before.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from typing import Any

from orchestrator.core.errors import IrmError

TIMEOUT = 300.0


def resolve(inventory: str, hosts: list[str]) -> dict[str, dict[str, Any]]:
    """host -> the options the role's ``warm`` entry point resolves (``{"error": why}`` for a host whose
    expression failed). Raises ``IrmError`` when the resolving process fails."""
    from orchestrator.core.runner import runner_env

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
        found = json.loads(proc.stdout)["hosts"]
    except (ValueError, KeyError, TypeError):
        raise IrmError("the options could not be resolved in-process (no answer)") from None
    return {str(h): dict(v) for h, v in found.items() if isinstance(v, dict)}


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
