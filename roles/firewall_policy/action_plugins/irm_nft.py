"""Action plugin for irm_nft: apply, prove the management path, confirm, in one task per host.

With O(reach), an apply that armed a dead-man timer is confirmed within the same task: the plugin opens
new TCP connections from the controller (the SOC) to every endpoint listed, then runs the module again
with state=confirmed (same token, same fingerprint). No host waits for the others between its apply and
its confirmation, so a stage of hundreds of hosts never outlives its timers. An endpoint that does not
answer leaves the change unconfirmed: the timer restores the last confirmed ruleset. Without O(reach),
the module runs alone (the confirm entry point confirms later).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.plugins.action import ActionBase

_CONFIRM_ARGS = ("token", "fingerprint", "state_dir", "table", "absent", "boot_unit", "nft_path")


def _reach(target: dict[str, Any], timeout: float) -> str | None:
    try:
        with socket.create_connection((str(target["address"]), int(target["port"])), timeout=timeout):
            return None
    except OSError as exc:
        return f"{target['host']} {target['address']}:{target['port']} ({exc.__class__.__name__})"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        super().run(tmp, task_vars)
        args = dict(self._task.args)
        reach = args.pop("reach", None)
        timeout = float(args.pop("reach_timeout", 5))
        applied = self._execute_module(module_name="irm_nft", module_args=args, task_vars=task_vars)
        if (reach is None or applied.get("failed") or self._task.check_mode
                or args.get("state", "applied") != "applied" or applied.get("deadman") != "armed"):
            return dict(applied)
        targets = list(reach)
        unanswered: list[str] = []
        if targets:
            with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
                unanswered = [r for r in pool.map(lambda t: _reach(t, timeout), targets) if r]
        if unanswered:
            return {**applied, "failed": True, "unanswered": unanswered,
                    "msg": f"management path cut, left unconfirmed (the dead-man timer reverts it): "
                           f"{', '.join(unanswered)}"}
        confirm = {"state": "confirmed", **{k: args[k] for k in _CONFIRM_ARGS if k in args}}
        confirmed = self._execute_module(module_name="irm_nft", module_args=confirm, task_vars=task_vars)
        if confirmed.get("failed"):
            return {**confirmed, "changed": applied.get("changed", False),
                    "irm_applied_at": applied.get("irm_applied_at")}
        return {**applied, "deadman": "confirmed", "irm_live_fingerprint": confirmed.get("irm_live_fingerprint"),
                "irm_armed_token": "", "irm_confirmed": True}
