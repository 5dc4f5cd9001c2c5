"""Recovery's declarative table: one entry per step, in IRM #1's fixed order (propagation traffic,
sub-areas, laptops, LAN, Internet). The recovery phase, the playbooks' names, the runbook, the live view
and the report read it; each step names the containment play that is its rollback.

Pure: no I/O. A transition changes a copy of an area's state; the sub-area step also takes the
sub-area it reconnects.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.core.phases import UNBLOCK_IP, UNBLOCK_PORT, Phase, Where
from orchestrator.core.phases import copy_state as _copy
from orchestrator.core.posture import AreaState


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



RECOVERY: tuple[Phase, ...] = (
    Phase(1, "vectors", "reopen the propagation traffic on the area hosts", "recover_1_vectors", Where.AREA_HOSTS,
          UNBLOCK_PORT, _reopen_vectors, rollback="contain_3_vectors"),
    Phase(2, "subareas", "reconnect the sub-areas, one at a time", "recover_2_subareas", Where.GATEWAY, UNBLOCK_IP,
          _reconnect_sub_area, rollback="contain_5_subarea", per_sub_area="subarea"),
    Phase(3, "mobile", "reconnect the mobile segments and lift the removable-storage block", "recover_3_mobile",
          Where.GATEWAY, UNBLOCK_IP, _reconnect_mobile, rollback="contain_4_mobile", removable_storage=True),
    Phase(4, "lan", "reconnect the area to the local network", "recover_4_lan", Where.GATEWAY, UNBLOCK_IP,
          _reconnect_lan, rollback="contain_2_isolate", watches_every_area=True),
    Phase(5, "internet", "reconnect the area to the Internet", "recover_5_internet", Where.EDGE, UNBLOCK_IP,
          _reconnect_internet, rollback="contain_1_internet_cut"),
)
# what --only takes: a step's name or number
STEP_CHOICES = ", ".join(p.name for p in RECOVERY) + f" or 1-{len(RECOVERY)}"


def recovery_step(name: str) -> Phase:
    """A step by its journaled name: ``subarea:<qualified>`` is one sub-area of step 2, ``subareas``;
    ``...:rollback`` and ``...:restore`` (a halt's or a resume's play) belong to their step. KeyError for
    anything else."""
    kind = name.split(":rollback")[0].split(":restore")[0]
    item, _, _ = kind.partition(":")
    for phase in RECOVERY:
        if phase.name == kind or (phase.per_sub_area is not None and ":" in kind and phase.per_sub_area == item):
            return phase
    raise KeyError(f"no recovery step '{name}'")


def step_names(quarantined: list[str]) -> list[str]:
    """The steps of a recovery, in the IRM order: one per quarantined sub-area for the step that
    reconnects them one at a time (the step itself, changing nothing, when none was quarantined)."""
    names: list[str] = []
    for phase in RECOVERY:
        if phase.per_sub_area is not None and quarantined:
            names += [f"{phase.per_sub_area}:{s}" for s in quarantined]
        else:
            names.append(phase.name)
    return names
