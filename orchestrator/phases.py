"""The IRM phases as declarative tables: one entry per containment stage and per recovery step, with
its number, name, title, playbook, where it applies, the posture change it makes, its rollback and its
RE&CT response action. The code (``containment``, ``recovery``), the report and the README read
these tables; there is one numbering, this one.

Pure: no I/O. A transition changes a copy of an area's state (``AreaState``); the sub-area stage and
step also take the sub-area they act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.posture import AreaState


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


def _copy(st: AreaState) -> AreaState:
    return replace(st, quarantined=set(st.quarantined))


def _cut_internet(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), posture="internet_cut") if st.posture == "connected" else _copy(st)


def _isolate(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), posture="isolated")


def _block_vectors(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), vectors_blocked=True)


def _block_mobile(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), mobile_blocked=True)


def _quarantine(st: AreaState, sub_area: str | None) -> AreaState:
    out = _copy(st)
    if sub_area:
        out.quarantined.add(sub_area)
    return out


def _reopen_vectors(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), vectors_blocked=False)


def _reconnect_sub_area(st: AreaState, sub_area: str | None) -> AreaState:
    out = _copy(st)
    out.quarantined.discard(sub_area or "")
    return out


def _reconnect_mobile(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), mobile_blocked=False)


def _reconnect_lan(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), posture="internet_cut") if st.posture == "isolated" else _copy(st)


def _reconnect_internet(st: AreaState, _: str | None) -> AreaState:
    return replace(_copy(st), posture="connected")


BLOCK_EXTERNAL = React("RA3101", "Block external IP address")
BLOCK_INTERNAL = React("RA3102", "Block internal IP address")
BLOCK_PORT = React("RA3108", "Block port internal communication")
UNBLOCK_PORT = React("RA5104", "Unblock blocked port")
UNBLOCK_IP = React("RA5101", "Unblock blocked IP")

CONTAINMENT: tuple[Phase, ...] = (
    Phase(1, "internet_cut", "cut the area from the Internet", "contain_internet_cut", Where.EDGE,
          BLOCK_EXTERNAL, _cut_internet),
    Phase(2, "isolate", "isolate the area, keeping management and the validated critical flows",
          "contain_isolate", Where.GATEWAY, BLOCK_INTERNAL, _isolate),
    Phase(3, "vectors", "block the propagation vectors and removable storage on every area host",
          "contain_vectors", Where.AREA_HOSTS, BLOCK_PORT, _block_vectors),
    Phase(4, "mobile", "block the mobile and VPN segments", "contain_mobile", Where.GATEWAY, BLOCK_INTERNAL,
          _block_mobile),
    Phase(5, "subarea", "quarantine every sub-area that shows detections, until the spread stops",
          "contain_subarea", Where.GATEWAY, BLOCK_INTERNAL, _quarantine),
)

RECOVERY: tuple[Phase, ...] = (
    Phase(1, "vectors", "reopen the propagation traffic on the area hosts", "recover_vectors", Where.AREA_HOSTS,
          UNBLOCK_PORT, _reopen_vectors, rollback="contain_vectors"),
    Phase(2, "subareas", "reconnect the sub-areas, one at a time", "recover_subarea", Where.GATEWAY, UNBLOCK_IP,
          _reconnect_sub_area, rollback="contain_subarea"),
    Phase(3, "mobile", "reconnect the mobile segments and lift the removable-storage block", "recover_mobile",
          Where.GATEWAY, UNBLOCK_IP, _reconnect_mobile, rollback="contain_mobile"),
    Phase(4, "lan", "reconnect the area to the local network", "recover_lan", Where.GATEWAY, UNBLOCK_IP,
          _reconnect_lan, rollback="contain_isolate"),
    Phase(5, "internet", "reconnect the area to the Internet", "recover_internet", Where.EDGE, UNBLOCK_IP,
          _reconnect_internet, rollback="contain_internet_cut"),
)


def containment_stage(name: str) -> Phase:
    return next(p for p in CONTAINMENT if p.name == name)


def recovery_step(name: str) -> Phase:
    """``subarea:<qualified>`` is one sub-area of step 2, ``subareas``; ``...:rollback`` and
    ``...:restore`` (a halt's or a resume's play) belong to their step. KeyError for anything else."""
    kind = name.split(":rollback")[0].split(":restore")[0]
    kind = "subareas" if kind.startswith("subarea:") else kind
    for phase in RECOVERY:
        if phase.name == kind:
            return phase
    raise KeyError(f"no recovery step '{name}'")
