"""One commit-confirmed nftables change, as a sequence the controller drives: render the host's policy
(the collection's renderer, on the controller), run the host code (``irm_nft_host``) to arm the dead-man
timer and apply, prove the management path with new connections from the controller, then run the host
code again to confirm (same token, same fingerprint). An endpoint that does not answer leaves the change
unconfirmed: the timer restores the last confirmed ruleset.

Two drivers share it, so there is one implementation of the sequence: the ``irm_nft`` action plugin
(inside a play, over Ansible's connection) and irm's warm path (``orchestrator.core.warm``: over an SSH
connection irm holds open, no play started). Standard library only; the host code's caller, the
renderer and the reach check are given by the driver (each is loaded its own way).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

CONFIRM_ARGS = ("token", "fingerprint", "state_dir", "table", "absent", "boot_unit", "nft_path")
# The line that runs the host code sent on stdin (never on the command line: it is tens of KiB).
STDIN_RUNNER = "import sys; exec(compile(sys.stdin.read(), 'irm_nft_host', 'exec'))"
# A session's runner reads exactly the payload (its length first, on a line of its own) from fd 0, unbuffered:
# what follows on stdin is the session's later requests, read by the host code itself (``stdin_session``).
SESSION_RUNNER = (
    "import os, sys\n"
    "head = b''\n"
    "while not head.endswith(b'\\n'):\n"
    "    c = os.read(0, 1)\n"
    "    if not c: sys.exit(3)\n"
    "    head += c\n"
    "size, body = int(head), b''\n"
    "while len(body) < size:\n"
    "    c = os.read(0, size - len(body))\n"
    "    if not c: sys.exit(3)\n"
    "    body += c\n"
    "exec(compile(body.decode('utf-8'), 'irm_nft_host', 'exec'))\n")


def host_command(interpreter: str) -> str:
    """The remote command that runs the host code the payload carries, with the host's Python."""
    return f"{shlex.quote(interpreter)} -I -c {shlex.quote(STDIN_RUNNER)}"


def host_payload(source: str, params: dict[str, Any], check_mode: bool) -> str:
    """What goes on the remote command's stdin: the host code, then its one call."""
    request = {"params": params, "check_mode": check_mode}
    return f"{source}\nstdin_main(json.loads({json.dumps(json.dumps(request))}))\n"


def session_command(interpreter: str) -> str:
    """The remote command of a session: the host code, then its requests, over one process's stdin."""
    return f"{shlex.quote(interpreter)} -I -c {shlex.quote(SESSION_RUNNER)}"


def session_payload(source: str, params: dict[str, Any], wait: float) -> bytes:
    """A session's first bytes on stdin: the payload's length, the host code and its first call, which
    then waits up to ``wait`` seconds for each further request (``session_request``)."""
    request = {"params": params, "check_mode": False, "wait": wait}
    body = f"{source}\nstdin_session(json.loads({json.dumps(json.dumps(request))}))\n".encode()
    return f"{len(body)}\n".encode() + body


def session_request(params: dict[str, Any]) -> bytes:
    """A session's next request: one JSON line."""
    return (json.dumps({"params": params, "check_mode": False}) + "\n").encode()


def host_result(rc: int | None, stdout: str, stderr: str, interpreter: str) -> dict[str, Any]:
    """The host code's result (its last stdout line), or a failure naming what the host said."""
    lines = (stdout or "").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if rc == 0 and lines else None
    except ValueError:
        result = None
    if isinstance(result, dict):
        return result
    detail = (stderr or stdout or "no output").strip().splitlines()[-3:]
    return {"failed": True, "rc": rc, "msg": f"irm_nft could not run with {interpreter} on the host: "
                                             f"{' | '.join(detail)}"}


def with_ruleset(host: str, args: dict[str, Any], host_code: Any, render: Callable[..., str],
                 policy_error: type[Exception]) -> dict[str, Any]:
    """``args`` with ``policy`` (irm's abstract rules) replaced by the rendered ``ruleset`` and its
    fingerprint, as the host will compute it from what nftables lists; a failure dict when the policy
    cannot be rendered or its fingerprint is not the one given."""
    args = dict(args)
    policy = args.pop("policy")
    if args.get("ruleset"):
        return {"failed": True, "msg": "give policy or ruleset, not both"}
    try:
        checked = host_code.normalize({**args, "ruleset": "", "fingerprint": ""})  # as the host will
        empty = checked["absent"] if "absent" in args else None
        try:
            planned = "absent" if empty else str(host_code.policy_fingerprint(policy))
        except (AttributeError, KeyError, TypeError, ValueError):
            planned = None
        args["ruleset"] = render(host, policy, table=checked["table"], fingerprint=planned or "", empty=empty)
    except host_code.Failed as exc:
        return dict(exc.result)
    except policy_error as exc:
        return {"failed": True, "msg": f"policy for {host} cannot be rendered: {exc}"}
    if planned is None:
        return {"failed": True, "msg": f"policy for {host} cannot be reduced to its canonical form"}
    if args.get("fingerprint") and args["fingerprint"] != planned:
        return {"failed": True, "msg": f"the fingerprint given for {host} ({args['fingerprint']}) is not "
                                       f"its policy's ({planned}): nothing applied"}
    args["fingerprint"] = planned
    return args


def apply_confirmed(args: dict[str, Any], reach: list[dict[str, Any]] | None, timeout: float,
                    call: Callable[[dict[str, Any]], dict[str, Any]],
                    unanswered: Callable[[list[dict[str, Any]], float], list[str]],
                    check_mode: bool = False) -> dict[str, Any]:
    """Apply (``call`` runs the host code once), then, when the apply armed a timer and ``reach`` lists
    the management endpoints, prove them and confirm. The result is the task's: the apply's, with the
    confirmation's live fingerprint, or a failure that says what was left unconfirmed and why."""
    applied = call(args)
    if (reach is None or applied.get("failed") or check_mode
            or args.get("state", "applied") != "applied" or applied.get("deadman") != "armed"):
        return _media_failed(dict(applied))
    silent = unanswered(list(reach), timeout)
    if silent:
        return {**applied, "failed": True, "unanswered": silent,
                "msg": f"management path cut, left unconfirmed (the dead-man timer reverts it): {', '.join(silent)}"}
    confirmed = call({"state": "confirmed", **{k: args[k] for k in CONFIRM_ARGS if k in args}})
    if confirmed.get("failed"):
        return {**confirmed, "changed": applied.get("changed", False), "irm_applied_at": applied.get("irm_applied_at")}
    return _media_failed({**applied, "deadman": "confirmed", "irm_armed_token": "", "irm_confirmed": True,
                          "irm_live_fingerprint": confirmed.get("irm_live_fingerprint")})


def _media_failed(result: dict[str, Any]) -> dict[str, Any]:
    """The host's removable storage could not be changed with its table: the task fails, naming it, once
    the table stands (confirmed, or in place already)."""
    if result.get("irm_media_error") and not result.get("failed"):
        return {**result, "failed": True, "msg": f"removable storage: {result['irm_media_error']} (the firewall "
                                                 "policy is in place)"}
    return result
