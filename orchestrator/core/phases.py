"""The shape shared by the phases' declarative tables (``containment.table``, ``recovery.table``): one
entry per containment stage or recovery step, with everything about it: its number, name, title,
playbook, where it applies, the posture change it makes, the summary the plan prints, what rides with it
(removable storage), what its soak watches, the extra vars its play receives and the facts its hosts
return (``core.contracts``), its rollback and its RE&CT response action. Code outside the
tables reads these fields; it never branches on a stage's name. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from pydantic import BaseModel

from orchestrator.core.contracts import StageFacts, StageVars
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
class Brief:
    """What a stage's summary line says of the areas it acts on (``Phase.summary``)."""

    areas: str  # "subsidiary-x, hq"
    edge: str
    gateways: str
    flows: int  # validated critical flows kept open
    vectors: str  # "tcp/4445, tcp/445"
    hosts: int  # area hosts
    mobile: str  # the mobile segments, qualified
    mobile_at: str  # the gateways in front of them


def _no_summary(_: Brief) -> str:
    return ""


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
    summary: Callable[[Brief], str] = _no_summary  # containment: the plan's line for this stage
    first_cut: bool = False  # containment: the stage whose change is the area's first cut
    per_sub_area: str | None = None  # acts on one sub-area at a time: its items are named "<this>:<sub-area>"
    # changes removable storage on the area hosts too: containment's host stage blocks it in the same call
    # as each host's table, recovery's mobile step lifts it (its own play on the area hosts)
    removable_storage: bool = False
    watches_every_area: bool = False  # recovery: its soak watches every area, not only the one reconnected
    warm: bool = False  # its play only applies the firewall policy to boundaries: the warm path may run it
    sends: type[BaseModel] = StageVars  # the extra vars of its play (checked against the roles by a test)
    returns: type[BaseModel] = StageFacts  # what each of its hosts returns

    @property
    def host_level(self) -> bool:
        return self.where == Where.AREA_HOSTS



def copy_state(st: AreaState) -> AreaState:
    return replace(st, quarantined=set(st.quarantined))


BLOCK_EXTERNAL = React("RA3101", "Block external IP address")
BLOCK_INTERNAL = React("RA3102", "Block internal IP address")
BLOCK_PORT = React("RA3108", "Block port internal communication")
UNBLOCK_PORT = React("RA5104", "Unblock blocked port")
UNBLOCK_IP = React("RA5101", "Unblock blocked IP")
