"""Containment's declarative table: one entry per stage, in the order they run. The containment phase,
the playbooks' names, the runbook, the live view and the report read it; there is one numbering, this one.

Pure: no I/O. A transition changes a copy of an area's state; the sub-area stage also takes the
sub-area it acts on.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.core.phases import BLOCK_EXTERNAL, BLOCK_INTERNAL, BLOCK_PORT, Brief, Phase, Where
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



def _mobile_summary(b: Brief) -> str:
    return (f"block mobile segments {b.mobile} at {b.mobile_at}" if b.mobile_at
            else f"no mobile segment to block (the policy of {b.gateways} is applied again)")


CONTAINMENT: tuple[Phase, ...] = (
    Phase(1, "internet_cut", "cut the area from the Internet", "contain_1_internet_cut", Where.EDGE,
          BLOCK_EXTERNAL, _cut_internet, summary=lambda b: f"cut {b.areas} from the Internet at {b.edge}",
          first_cut=True, warm=True),
    Phase(2, "isolate", "isolate the area, keeping management and the validated critical flows",
          "contain_2_isolate", Where.GATEWAY, BLOCK_INTERNAL, _isolate,
          summary=lambda b: f"isolate {b.areas} at {b.gateways}, keeping {b.flows} validated critical flow(s) and "
          "management open", warm=True),
    Phase(3, "vectors", "block the propagation vectors and removable storage on every area host",
          "contain_3_vectors", Where.AREA_HOSTS, BLOCK_PORT, _block_vectors,
          summary=lambda b: f"block {b.vectors} and removable storage on {b.hosts} area hosts",
          removable_storage=True),
    Phase(4, "mobile", "block the mobile and VPN segments", "contain_4_mobile", Where.GATEWAY, BLOCK_INTERNAL,
          _block_mobile, summary=_mobile_summary, warm=True),
    Phase(5, "subarea", "quarantine every sub-area that shows detections, until the spread stops",
          "contain_5_subarea", Where.GATEWAY, BLOCK_INTERNAL, _quarantine, per_sub_area="subarea",
          warm=True),
)
# the stages run one after the other before the loop; the loop quarantines sub-areas one at a time
STAGES: tuple[Phase, ...] = tuple(p for p in CONTAINMENT if not p.per_sub_area)
SUBAREA_LOOP: Phase = next(p for p in CONTAINMENT if p.per_sub_area)
HOST_STAGE: Phase = next(p for p in CONTAINMENT if p.host_level)  # the host-level stage a re-run retries


def containment_stage(name: str) -> Phase:
    """A stage by name; ``vectors:retry`` and the like belong to their stage. KeyError for anything else."""
    base = name.split(":")[0]
    for phase in CONTAINMENT:
        if phase.name == base:
            return phase
    raise KeyError(f"no containment stage '{name}'")


def is_first_cut(name: str) -> bool:
    """The stage of this journaled name is the area's first cut."""
    try:
        return containment_stage(name).first_cut
    except KeyError:
        return False
