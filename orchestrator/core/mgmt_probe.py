"""Which management endpoints answer a new TCP connection from where they are managed, right now.

Run before every stage: a host that does not answer before a change is journaled unreachable and never
holds a boundary change back (a boundary protects it, it cannot be waited on); one that answered before
must answer after, or the change is not confirmed. An endpoint behind an execution node is checked
through it (``through``): a new SSH connection to the node, then a new TCP connection from there. The
connecting is the irm.response collection's ``irm_reach``, the code that confirms changes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.core.paths import module_util


def probe(endpoints: list[dict[str, Any]], timeout: float = 3.0) -> tuple[list[dict[str, Any]], set[str]]:
    """(the endpoints that answered, the hosts none of whose endpoints answered)."""
    if not endpoints:
        return [], set()
    failed = module_util("irm_reach").unanswered(endpoints, timeout)
    bad = {id(t) for t, _ in failed}
    answered = [e for e in endpoints if id(e) not in bad]
    up = {str(e["host"]) for e in answered}
    return answered, {str(e["host"]) for e in endpoints} - up
