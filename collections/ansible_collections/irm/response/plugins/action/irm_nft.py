"""Action plugin for irm_nft: apply, prove the management path, confirm, in one task per host.

With O(reach), an apply that armed a dead-man timer is confirmed within the same task: the plugin opens
new TCP connections from the controller (the SOC) to every endpoint listed, then runs the module again
with state=confirmed (same token, same fingerprint). No host waits for the others between its apply and
its confirmation, so a stage of hundreds of hosts never outlives its timers. An endpoint that does not
answer leaves the change unconfirmed: the timer restores the last confirmed ruleset. Without O(reach),
the module runs alone (the confirm entry point confirms later).

With O(policy) (irm's abstract rules) instead of O(ruleset), the plugin renders the nftables file here on
the controller with the collection's one renderer (irm_nft_render), from the policy alone.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.irm.response.plugins.module_utils.irm_nft_render import PolicyError, render
from ansible_collections.irm.response.plugins.module_utils.irm_reach import unanswered as tcp_unanswered

_CONFIRM_ARGS = ("token", "fingerprint", "state_dir", "table", "absent", "boot_unit", "nft_path")


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
            policy = args.pop("policy")
            if args.get("ruleset"):
                return {"failed": True, "msg": "give policy or ruleset, not both"}
            host = str((task_vars or {}).get("inventory_hostname", ""))
            try:
                args["ruleset"] = render(host, policy, table=str(args.get("table", "irm")),
                                         fingerprint=str(args.get("fingerprint", "")),
                                         empty=bool(args["absent"]) if "absent" in args else None)
            except PolicyError as exc:
                return {"failed": True, "msg": f"policy for {host} cannot be rendered: {exc}"}
        applied = self._execute_module(module_name="irm.response.irm_nft", module_args=args, task_vars=task_vars)
        if (reach is None or applied.get("failed") or self._task.check_mode
                or args.get("state", "applied") != "applied" or applied.get("deadman") != "armed"):
            return dict(applied)
        unanswered = _unanswered(list(reach), timeout)
        if unanswered:
            return {**applied, "failed": True, "unanswered": unanswered,
                    "msg": f"management path cut, left unconfirmed (the dead-man timer reverts it): "
                           f"{', '.join(unanswered)}"}
        confirm = {"state": "confirmed", **{k: args[k] for k in _CONFIRM_ARGS if k in args}}
        confirmed = self._execute_module(module_name="irm.response.irm_nft", module_args=confirm, task_vars=task_vars)
        if confirmed.get("failed"):
            return {**confirmed, "changed": applied.get("changed", False),
                    "irm_applied_at": applied.get("irm_applied_at")}
        return {**applied, "deadman": "confirmed", "irm_live_fingerprint": confirmed.get("irm_live_fingerprint"),
                "irm_armed_token": "", "irm_confirmed": True}
