"""Hypothesis strategies over the containment state space of an inventory."""

from __future__ import annotations

from hypothesis import strategies as st

from orchestrator.core.incident import Vector
from orchestrator.core.inventory import Inventory
from orchestrator.core.posture import AREA_ORDER, AreaState

# The worm's vectors: the lab worm's port, business ports, and the management ports themselves (a worm
# that spreads over SSH or WinRM must not make containment cut the operator out).
PORTS = [22, 80, 135, 139, 445, 3389, 4445, 5985, 5986, 8069]


def vectors() -> st.SearchStrategy[list[Vector]]:
    one = st.builds(Vector, protocol=st.sampled_from(["tcp", "udp"]), port=st.sampled_from(PORTS))
    return st.lists(one, min_size=1, max_size=4, unique_by=str)


def area_state(inv: Inventory, area: str) -> st.SearchStrategy[AreaState]:
    subs = sorted(s.qualified for s in inv.areas[area].sub_areas)
    return st.builds(AreaState, posture=st.sampled_from(AREA_ORDER), vectors_blocked=st.booleans(),
                     mobile_blocked=st.booleans(),
                     quarantined=st.sets(st.sampled_from(subs)) if subs else st.just(set()))


def states(inv: Inventory) -> st.SearchStrategy[dict[str, AreaState]]:
    """Every combination of area posture, host-level vector block, mobile block and quarantined
    sub-areas, for every area at once (a superset of the states containment and recovery reach)."""
    return st.fixed_dictionaries({name: area_state(inv, name) for name in inv.areas})
