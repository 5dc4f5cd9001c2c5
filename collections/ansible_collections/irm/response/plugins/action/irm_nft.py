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

import json
import shlex
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.irm.response.plugins.module_utils import irm_nft_host
from ansible_collections.irm.response.plugins.module_utils.irm_nft_render import PolicyError, render
from ansible_collections.irm.response.plugins.module_utils.irm_reach import unanswered as tcp_unanswered

_CONFIRM_ARGS = ("token", "fingerprint", "state_dir", "table", "absent", "boot_unit", "nft_path")


# The host-side code and the line that runs it, sent on stdin (never on the command line).
_HOST_SOURCE = Path(irm_nft_host.__file__).read_text(encoding="utf-8")
_STDIN_RUNNER = "import sys; exec(compile(sys.stdin.read(), 'irm_nft_host', 'exec'))"


def _unanswered(targets: list[dict[str, Any]], timeout: float) -> list[str]:
    """The collection's irm_reach does the connecting (one implementation), run here on the SOC."""
    return [text for _, text in tcp_unanswered(targets, timeout)]


def _planned_fingerprint(policy: Any, absent: bool | None) -> str | None:
    """The fingerprint the live table will have once the policy is in place (the host computes the same
    from what nftables lists); None when the policy is not well-formed (the renderer then says where)."""
    try:
        return "absent" if absent else str(irm_nft_host.policy_fingerprint(policy))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        super().run(tmp, task_vars)
        args = dict(self._task.args)
        reach = args.pop("reach", None)
        timeout = float(args.pop("reach_timeout", 5))
        if "policy" in args:
            policy = args.pop("policy")
            if args.get("ruleset"):
                return {"failed": True, "msg": "give policy or ruleset, not both"}
            host = str((task_vars or {}).get("inventory_hostname", ""))
            try:
                checked = irm_nft_host.normalize({**args, "ruleset": "", "fingerprint": ""})  # as the host will
                planned = _planned_fingerprint(policy, checked["absent"] if "absent" in args else None)
                args["ruleset"] = render(host, policy, table=checked["table"], fingerprint=planned or "",
                                         empty=checked["absent"] if "absent" in args else None)
            except irm_nft_host.Failed as exc:
                return exc.result
            except PolicyError as exc:
                return {"failed": True, "msg": f"policy for {host} cannot be rendered: {exc}"}
            if planned is None:
                return {"failed": True, "msg": f"policy for {host} cannot be reduced to its canonical form"}
            if args.get("fingerprint") and args["fingerprint"] != planned:
                return {"failed": True, "msg": f"the fingerprint given for {host} ({args['fingerprint']}) is not "
                                               f"its policy's ({planned}): nothing applied"}
            args["fingerprint"] = planned
        applied = self._irm_nft(args, task_vars)
        if (reach is None or applied.get("failed") or self._task.check_mode
                or args.get("state", "applied") != "applied" or applied.get("deadman") != "armed"):
            return dict(applied)
        unanswered = _unanswered(list(reach), timeout)
        if unanswered:
            return {**applied, "failed": True, "unanswered": unanswered,
                    "msg": f"management path cut, left unconfirmed (the dead-man timer reverts it): "
                           f"{', '.join(unanswered)}"}
        confirm = {"state": "confirmed", **{k: args[k] for k in _CONFIRM_ARGS if k in args}}
        confirmed = self._irm_nft(confirm, task_vars)
        if confirmed.get("failed"):
            return {**confirmed, "changed": applied.get("changed", False),
                    "irm_applied_at": applied.get("irm_applied_at")}
        return {**applied, "deadman": "confirmed", "irm_live_fingerprint": confirmed.get("irm_live_fingerprint"),
                "irm_armed_token": "", "irm_confirmed": True}

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
        request = {"params": args, "check_mode": bool(self._task.check_mode)}
        payload = f"{_HOST_SOURCE}\nstdin_main(json.loads({json.dumps(json.dumps(request))}))\n"
        cmd = f"{shlex.quote(interpreter)} -I -c {shlex.quote(_STDIN_RUNNER)}"
        res = self._low_level_execute_command(cmd, sudoable=True, in_data=payload)
        lines = (res.get("stdout") or "").strip().splitlines()
        try:
            result = json.loads(lines[-1]) if res.get("rc") == 0 and lines else None
        except ValueError:
            result = None
        if not isinstance(result, dict):
            detail = (res.get("stderr") or res.get("stdout") or "no output").strip().splitlines()[-3:]
            return {"failed": True, "rc": res.get("rc"),
                    "msg": f"irm_nft could not run with {interpreter} on the host: {' | '.join(detail)}"}
        return result
