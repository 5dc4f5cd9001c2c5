"""Containment's declarative table: one entry per stage, in the order they run. The containment phase,
the playbooks' names, the runbook, the live view and the report read it; there is one numbering, this one.

Pure: no I/O. A transition changes a copy of an area's state; the sub-area stage also takes the
sub-area it acts on.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.core.phases import BLOCK_EXTERNAL, BLOCK_INTERNAL, BLOCK_PORT, Phase, Where
from orchestrator.core.phases import copy_state as _copy
from orchestrator.core.posture import AreaState


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



CONTAINMENT: tuple[Phase, ...] = (
    Phase(1, "internet_cut", "cut the area from the Internet", "contain_1_internet_cut", Where.EDGE,
          BLOCK_EXTERNAL, _cut_internet),
    Phase(2, "isolate", "isolate the area, keeping management and the validated critical flows",
          "contain_2_isolate", Where.GATEWAY, BLOCK_INTERNAL, _isolate),
    Phase(3, "vectors", "block the propagation vectors and removable storage on every area host",
          "contain_3_vectors", Where.AREA_HOSTS, BLOCK_PORT, _block_vectors),
    Phase(4, "mobile", "block the mobile and VPN segments", "contain_4_mobile", Where.GATEWAY, BLOCK_INTERNAL,
          _block_mobile),
    Phase(5, "subarea", "quarantine every sub-area that shows detections, until the spread stops",
          "contain_5_subarea", Where.GATEWAY, BLOCK_INTERNAL, _quarantine),
)

def containment_stage(name: str) -> Phase:
    return next(p for p in CONTAINMENT if p.name == name)
