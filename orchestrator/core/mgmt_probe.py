"""Which management endpoints answer a new TCP connection from the SOC, right now.

Run before every stage: a host that does not answer before a change is journaled unreachable and never
holds a boundary change back (a boundary protects it, it cannot be waited on); one that answered before
must answer after, or the change is not confirmed.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def _answers(endpoint: dict[str, Any], timeout: float) -> bool:
    try:
        with socket.create_connection((str(endpoint["address"]), int(str(endpoint["port"]))), timeout=timeout):
            return True
    except OSError:
        return False


def probe(endpoints: list[dict[str, Any]], timeout: float = 3.0) -> tuple[list[dict[str, Any]], set[str]]:
    """(the endpoints that answered, the hosts none of whose endpoints answered)."""
    if not endpoints:
        return [], set()
    with ThreadPoolExecutor(max_workers=min(64, len(endpoints))) as pool:
        ok = list(pool.map(lambda e: _answers(e, timeout), endpoints))
    answered = [e for e, good in zip(endpoints, ok, strict=True) if good]
    up = {str(e["host"]) for e in answered}
    return answered, {str(e["host"]) for e in endpoints} - up
