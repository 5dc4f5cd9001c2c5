"""New TCP connections to management endpoints: shared by the irm_tcp_reach module (on a host), the
irm_nft action plugin (on the controller, to confirm inline) and irm's own probe before a stage. One
implementation of "does the management path answer".

An endpoint managed through an execution node carries ``through`` (the node's name, the ``ssh`` command
that reaches it without the remote command, and its ``python``): it is checked by a new SSH connection
to the node (proving SOC -> node) from which the node opens a new TCP connection to the endpoint
(node -> host). Endpoints the caller reaches itself carry no ``through``.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

# What the node runs: read [[address, port], ...] on stdin, print the indexes that did not answer.
_REMOTE = (
    "import json, socket, sys\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "targets, timeout = json.load(sys.stdin)\n"
    "def bad(i):\n"
    "    try:\n"
    "        socket.create_connection(tuple(targets[i]), timeout=timeout).close()\n"
    "        return None\n"
    "    except OSError as exc:\n"
    "        return [i, exc.__class__.__name__]\n"
    "with ThreadPoolExecutor(max_workers=max(1, min(64, len(targets)))) as pool:\n"
    "    print(json.dumps([r for r in pool.map(bad, range(len(targets))) if r]))\n"
)


def _text(target, why):
    return f"{target['host']} {target['address']}:{target['port']} ({why})"


def _reach(target, timeout):
    try:
        with socket.create_connection((str(target["address"]), int(target["port"])), timeout=timeout):
            return None
    except OSError as exc:
        return target, _text(target, exc.__class__.__name__)


def _through(hop, targets, timeout):
    """Check ``targets`` from the execution node ``hop`` over a new SSH connection."""
    command = [*hop["ssh"], f"{shlex.quote(str(hop['python']))} -I -c {shlex.quote(_REMOTE)}"]
    data = json.dumps([[[str(t["address"]), int(t["port"])] for t in targets], timeout])
    try:
        proc = subprocess.run(command, input=data.encode(), capture_output=True, timeout=timeout + 30,
                              check=False)
        bad = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        bad = None
    if not isinstance(bad, list):
        why = f"no new SSH connection to the execution node {hop['name']}"
        return [(t, _text(t, why)) for t in targets]
    return [(targets[i], _text(targets[i], f"{why}, from {hop['name']}")) for i, why in bad]


def unanswered(targets, timeout):
    """(target, text) of every target that did not accept a new TCP connection within ``timeout``."""
    if not targets:
        return []
    direct = [t for t in targets if not t.get("through")]
    hops = {}
    for t in targets:
        if t.get("through"):
            hops.setdefault(t["through"]["name"], (t["through"], []))[1].append(t)
    jobs = [(lambda t=t: _reach(t, timeout)) for t in direct]
    jobs += [(lambda h=h, ts=ts: _through(h, ts, timeout)) for h, ts in hops.values()]
    out = []
    with ThreadPoolExecutor(max_workers=min(64, len(jobs))) as pool:
        for r in pool.map(lambda job: job(), jobs):
            if isinstance(r, list):
                out += r
            elif r:
                out.append(r)
    return out
