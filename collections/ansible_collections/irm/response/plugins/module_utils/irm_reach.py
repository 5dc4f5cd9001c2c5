"""New TCP connections to management endpoints: shared by the irm_tcp_reach module (on a host) and the
irm_nft action plugin (on the controller, to confirm inline). One implementation of "does the
management path answer"."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor


def _reach(target, timeout):
    try:
        with socket.create_connection((str(target["address"]), int(target["port"])), timeout=timeout):
            return None
    except OSError as exc:
        return target, f"{target['host']} {target['address']}:{target['port']} ({exc.__class__.__name__})"


def unanswered(targets, timeout):
    """(target, text) of every target that did not accept a new TCP connection within ``timeout``."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(64, len(targets))) as pool:
        return [r for r in pool.map(lambda t: _reach(t, timeout), targets) if r]
