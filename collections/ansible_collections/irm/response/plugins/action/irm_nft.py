"""Action plugin for irm_nft: apply, prove the management path, confirm, in one task per host.

With O(reach), an apply that armed a dead-man timer is confirmed within the same task: the plugin opens
new TCP connections from the controller (the SOC) to every endpoint listed, then runs the module again
with state=confirmed (same token, same fingerprint). No host waits for the others between its apply and
its confirmation, so a stage of hundreds of hosts never outlives its timers. An endpoint that does not
answer leaves the change unconfirmed: the timer restores the last confirmed ruleset. Without O(reach),
the module runs alone (the confirm entry point confirms later).

With O(policy) (irm's abstract rules) instead of O(ruleset), the plugin renders the nftables file here on
the controller with the collection's one renderer (irm_nft_render), from the policy alone.

Each call runs on the host as module_utils/irm_nft_host.py (standard library only), sent whole on the
connection's stdin to the host's known Python (``ansible_python_interpreter``, or the one discovered
earlier) with ``-I -c``: one process and no AnsiballZ payload, whose unpacking and imports cost the host
about ten times this code's own run. When the interpreter is not known yet, or the connection cannot
pipeline, or under Mitogen (whose warm interpreter already runs modules cheaply), the plugin runs the
irm_nft module as Ansible always does (same code, same results).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.irm.response.plugins.module_utils import irm_nft_host
from ansible_collections.irm.response.plugins.module_utils import irm_nft_sequence as sequence
from ansible_collections.irm.response.plugins.module_utils.irm_nft_render import PolicyError, render
from ansible_collections.irm.response.plugins.module_utils.irm_reach import unanswered as tcp_unanswered

# The host-side code, sent on stdin (never on the command line).
_HOST_SOURCE = Path(irm_nft_host.__file__).read_text(encoding="utf-8")


def _unanswered(targets: list[dict[str, Any]], timeout: float) -> list[str]:
    """The collection's irm_reach does the connecting (one implementation), run here on the SOC."""
    return [text for _, text in tcp_unanswered(targets, timeout)]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        super().run(tmp, task_vars)
        args = dict(self._task.args)
        reach = args.pop("reach", None)
        timeout = float(args.pop("reach_timeout", 5))
        if "policy" in args:
            host = str((task_vars or {}).get("inventory_hostname", ""))
            args = sequence.with_ruleset(host, args, irm_nft_host, render, PolicyError)
            if args.get("failed"):
                return args
        return sequence.apply_confirmed(args, reach, timeout, lambda a: self._irm_nft(a, task_vars), _unanswered,
                                        check_mode=bool(self._task.check_mode))

    def _interpreter(self, task_vars: dict[str, Any]) -> str | None:
        """The host's Python as Ansible would run it, when already known (set, or discovered earlier)."""
        value = task_vars.get("ansible_python_interpreter")
        if value is None:
            value = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        if value is None:
            return None
        value = str(self._templar.template(value)).strip()
        return None if not value or value.startswith("auto") else value  # auto*: discovery, left to Ansible

    def _can_run_direct(self) -> bool:
        """The connection pipelines (stdin reaches the command). Under Mitogen, modules already run in its
        warm interpreter on the host (and it refuses the pipelining question): the module path it is."""
        if any(cls.__module__.startswith("ansible_mitogen") for cls in type(self).__mro__):  # its action mixin
            return False
        if getattr(self._connection._shell, "SHELL_FAMILY", "sh") == "powershell":  # no POSIX shell, no nft
            return False
        return bool(self._is_pipelining_enabled("new"))

    def _irm_nft(self, args: dict[str, Any], task_vars: dict[str, Any] | None) -> dict[str, Any]:
        task_vars = task_vars or {}
        interpreter = self._interpreter(task_vars)
        if interpreter is None or not self._can_run_direct():
            return dict(self._execute_module(module_name="irm.response.irm_nft", module_args=args,
                                             task_vars=task_vars))
        payload = sequence.host_payload(_HOST_SOURCE, args, bool(self._task.check_mode))
        res = self._low_level_execute_command(sequence.host_command(interpreter), sudoable=True, in_data=payload)
        return sequence.host_result(res.get("rc"), res.get("stdout") or "", res.get("stderr") or "", interpreter)
