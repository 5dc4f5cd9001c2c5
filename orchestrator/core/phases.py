"""The shape shared by the phases' declarative tables (``containment.table``, ``recovery.table``): one
entry per containment stage or recovery step, with its number, name, title, playbook, where it applies,
the posture change it makes, its rollback and its RE&CT response action. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.core.posture import AreaState


class Where(StrEnum):
    """Where a stage or step applies its change."""

    EDGE = "edge"
    GATEWAY = "area gateway"
    AREA_HOSTS = "every area host"


@dataclass(frozen=True)
class React:
    """An RE&CT response action (https://atc-project.github.io/atc-react/)."""

    id: str
    name: str


Transition = Callable[[AreaState, "str | None"], AreaState]


@dataclass(frozen=True)
class Phase:
    """One containment stage or recovery step."""

    number: int
    name: str
    title: str
    playbook: str
    where: Where
    react: React
    transition: Transition
    rollback: str | None = None  # recovery: the containment play that puts the step's change back



def copy_state(st: AreaState) -> AreaState:
    return replace(st, quarantined=set(st.quarantined))


BLOCK_EXTERNAL = React("RA3101", "Block external IP address")
BLOCK_INTERNAL = React("RA3102", "Block internal IP address")
BLOCK_PORT = React("RA3108", "Block port internal communication")
UNBLOCK_PORT = React("RA5104", "Unblock blocked port")
UNBLOCK_IP = React("RA5101", "Unblock blocked IP")
