"""Action plugin for irm_tcp_reach: the connections are opened from the controller (the SOC) inside
the worker that runs the task, so proving one host's management path costs no module start-up and
each host is confirmed right after its own check (the module file documents the options)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.plugins.action import ActionBase


def _reach(target: dict[str, Any], timeout: float) -> str | None:
    try:
        with socket.create_connection((str(target["address"]), int(target["port"])), timeout=timeout):
            return None
    except OSError as exc:
        return f"{target['host']} {target['address']}:{target['port']} ({exc.__class__.__name__})"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("targets", "timeout"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        targets = list(args.get("targets") or [])
        timeout = float(args.get("timeout", 5))
        result.update(changed=False, unanswered=[])
        if not targets:
            return result
        with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
            unanswered = [r for r in pool.map(lambda t: _reach(t, timeout), targets) if r]
        result["unanswered"] = unanswered
        if unanswered:
            result.update(failed=True, msg=f"management path cut: {', '.join(unanswered)}")
        return result
