"""One truth across incidents: what every open incident holds, merged into the state irm plans from.

Each incident journals its own postures; a boundary or host enforces one table. So every plan is made
from the strictest of all open incidents' postures, area by area (the furthest posture, vectors blocked
if any incident blocks them, the mobile segments blocked if any blocks them, every quarantined
sub-area), with the vectors of every open incident that holds anything: an incident never loosens
another open incident's cuts, and recovering one incident reconnects only what no other open incident
still holds."""

from __future__ import annotations

from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Inventory
from orchestrator.core.journal import Journal
from orchestrator.core.posture import AREA_ORDER, AreaState


def strictest(*states: dict[str, AreaState]) -> dict[str, AreaState]:
    """Area by area, the strictest of several incidents' states."""
    out: dict[str, AreaState] = {}
    for one in states:
        for area, st in one.items():
            have = out.get(area, AreaState())
            out[area] = AreaState(
                posture=max(have.posture, st.posture, key=AREA_ORDER.index),
                vectors_blocked=have.vectors_blocked or st.vectors_blocked,
                mobile_blocked=have.mobile_blocked or st.mobile_blocked,
                quarantined=set(have.quarantined) | set(st.quarantined))
    return out


def holds_anything(states: dict[str, AreaState]) -> bool:
    return any(s.posture != "connected" or s.vectors_blocked or s.mobile_blocked or s.quarantined
               for s in states.values())


def held(inv: Inventory, journal: Journal, incident_id: int) -> dict[str, str]:
    """area -> what the incident holds there (only areas where it holds anything), as status and close say it."""
    return {a: s.posture + (", vectors blocked" if s.vectors_blocked else "")
            for a, s in incident_states(inv, journal, incident_id).items() if holds_anything({a: s})}


def incident_states(inv: Inventory, journal: Journal, incident_id: int) -> dict[str, AreaState]:
    scopes = journal.stages.postures(incident_id)
    return {a: AreaState.from_scopes(a, scopes) for a in inv.areas}


def held_by_others(inv: Inventory, journal: Journal, incident_id: int | None) -> tuple[dict[str, AreaState],
                                                                                       list[Vector]]:
    """What the open incidents other than ``incident_id`` hold: their strictest states and their vectors
    (only of those that hold anything)."""
    states: dict[str, AreaState] = {}
    vectors: list[Vector] = []
    for inc in journal.incidents.all():
        if inc.status != "open" or inc.id == incident_id:
            continue
        theirs = incident_states(inv, journal, inc.id)
        if holds_anything(theirs):
            states = strictest(states, theirs)
            vectors += [v for v in inc.spec.vectors if v not in vectors]
    return states, vectors


def holders(inv: Inventory, journal: Journal, area: str, incident_id: int) -> list[int]:
    """The other open incidents that still hold something in ``area``."""
    out = []
    for inc in journal.incidents.all():
        if inc.status == "open" and inc.id != incident_id and holds_anything(
                {area: incident_states(inv, journal, inc.id)[area]}):
            out.append(inc.id)
    return out
