"""The boundaries as a detection source (``identification.boundary``) and the sub-area loop reading them,
with scripted counters (no root, no lab). tests/integration/test_boundary_sensors.py reads the kernel's
counters while the lab worm runs."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.containment.table import SUBAREA_LOOP
from orchestrator.core.detection import Detection, Drop
from orchestrator.core.events import EventKind
from orchestrator.core.incident import IncidentSpec, Vector
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.core.posture import SENSOR, AreaState, Policy, policies
from orchestrator.identification.boundary import BoundarySensor
from tests.conftest import LAB_INVENTORY
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

INV = without_channels(load_inventory(LAB_INVENTORY))
AREA = "subsidiary-x"
OFFICE_1, OFFICE_2 = "subsidiary-x/office-1", "subsidiary-x/office-2"


def _planned(quarantined: frozenset[str] = frozenset()) -> dict[str, Policy]:
    state = {AREA: AreaState(posture="isolated", quarantined=set(quarantined))}
    return policies(INV, [Vector(protocol="tcp", port=4445)], state)


def _sensor_comment(segment: str) -> str:
    (comment,) = [r.comment for r in _planned()["gw-x"].forward.rules
                  if r.comment.startswith(SENSOR) and r.comment.endswith(f" from {segment}")]
    return comment


class Counters:
    """What the gateway's counters say at each reading (scripted), and the readings asked for."""

    def __init__(self, *readings: dict[str, int], errors: dict[str, str] | None = None) -> None:
        self.readings = list(readings)
        self.errors = errors or {}
        self.asked: list[list[str]] = []

    def __call__(self, hosts: list[str], planned: dict[str, Policy]) -> tuple[dict[str, dict[str, int]],
                                                                                dict[str, str]]:
        self.asked.append(hosts)
        counts = self.readings.pop(0) if self.readings else {}
        return ({h: counts for h in hosts if h not in self.errors}, dict(self.errors))


def test_a_rise_of_a_sensor_counter_is_a_detection_of_its_sub_area_and_only_a_rise() -> None:
    one, two = _sensor_comment(OFFICE_1), _sensor_comment(OFFICE_2)
    counters = Counters({one: 3}, {one: 3}, {one: 5, two: 1, "area subsidiary-x isolated: leaving": 99},
                        {one: 9, two: 4})
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    sensor = BoundarySensor(INV, ["gw-x"], counters, _planned, clock=lambda: now)
    (first,) = sensor.poll()
    assert (first.detection.segment, first.detection.area, first.detection.host) == (OFFICE_1, AREA, "gw-x")
    assert (first.packets, first.total) == (3, 3) and first.detection.infection and first.detection.network
    assert sensor.poll() == []  # the same count: nothing new
    third = sensor.poll()
    # a rule that is not a sensor counts nothing here, however high its counter
    assert [(d.detection.segment, d.packets, d.total) for d in third] == [(OFFICE_1, 2, 5), (OFFICE_2, 1, 1)]
    # a sub-area the caller skips (already quarantined) is counted, not reported
    assert [(d.detection.segment, d.packets) for d in sensor.poll(skip={OFFICE_1})] == [(OFFICE_2, 3)]
    assert counters.asked == [["gw-x"]] * 4
    assert len(sensor.detections(now)) == 4 and sensor.problems(now) == []


def test_a_table_replaced_since_the_last_reading_counts_again_from_zero() -> None:
    one = _sensor_comment(OFFICE_1)
    quarantined: list[frozenset[str]] = [frozenset()]
    sensor = BoundarySensor(INV, ["gw-x"], Counters({one: 40}, {one: 2}, {one: 1}), lambda: _planned(quarantined[0]))
    assert [d.packets for d in sensor.poll()] == [40]
    quarantined[0] = frozenset({OFFICE_2})  # irm replaced gw-x's table: its counters started again
    assert [d.packets for d in sensor.poll()] == [2]  # a rise of 2, not a fall of 38
    assert [d.packets for d in sensor.poll()] == [1]  # reloaded by someone else: what it says now


def test_a_boundary_that_cannot_be_read_is_a_problem_never_silence() -> None:
    now = datetime.now(UTC)
    counters = Counters({_sensor_comment(OFFICE_1): 5}, errors={"gw-x": "not read (unreachable)"})
    sensor = BoundarySensor(INV, ["gw-x", "gw-hq", "gw-x"], counters, _planned)
    assert sensor.poll() == []  # gw-x's count was not read: no detection, and no zero either
    # once may be a reading in the middle of irm's own change; twice running, it is said
    assert sensor.problems(now) == []
    assert sensor.poll() == []
    assert sensor.problems(now) == ["boundary sensor gw-x could not be read: not read (unreachable)"]
    # gw-hq's area is not contained: its plan drops nothing, there is no counter to read
    assert counters.asked == [["gw-x"], ["gw-x"]]


class ScriptedSensor:
    """A sensor whose readings are scripted per poll: each reading is the sub-areas whose counter rose."""

    def __init__(self, *readings: list[str], always: tuple[str, ...] = ()) -> None:
        self.readings = list(readings)
        self.always = always  # sub-areas whose counter rises at every reading (a worm never removed)
        self.skips: list[set[str]] = []

    def poll(self, skip: Collection[str] = ()) -> list[Drop]:
        self.skips.append(set(skip))
        rose = (self.readings.pop(0) if self.readings else []) + list(self.always)
        now = datetime.now(UTC)
        return [Drop(Detection(now, "gw-x", f"irm boundary gw-x dropped 2 worm attempt(s) from {s}", "blocked",
                               None, s, AREA, network=True), 2, 2) for s in rose if s not in skip]

    def problems(self, now: datetime) -> list[str]:
        return []


def test_the_sub_area_loop_quarantines_what_the_boundary_drops_and_waits_for_it_to_stop(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
    run = FakeRunner()
    # the laptops' worms are dropped by their own hosts at every reading: the mobile stage cut their
    # segment whole, it is never a sub-area to quarantine, and it never holds the loop
    sensor = ScriptedSensor([OFFICE_1], [], [OFFICE_1, OFFICE_2], [], always=("subsidiary-x/vpn",))
    request = ContainRequest(inventory=LAB_INVENTORY, area=AREA, operator="op", quiet_window=0.6, poll=0.05,
                             sensor_interval=0.1, max_wait=30)
    (report,) = Containment(request, INV, j, NoDetections(), run=run, probe=FakeProber(), sensor=sensor).run()
    assert report.spread_stopped is True and report.quarantined == [OFFICE_1, OFFICE_2]
    loops = [c for c in run.calls if c.playbook == SUBAREA_LOOP.playbook]
    assert [c.targets for c in loops] == [["gw-x"], ["gw-x"]]  # one quarantine per new sub-area, at its gateway
    # once quarantined, a sub-area's drops are the boundary doing its job: skipped, never a reason to wait
    vpn = {"subsidiary-x/vpn"}
    assert sensor.skips[0] == vpn and OFFICE_1 in sensor.skips[2] and sensor.skips[-1] == {OFFICE_1, OFFICE_2} | vpn
    drops = j.timeline.of_kinds((EventKind.BOUNDARY_DROPS,))
    assert [(e["area"], e["detail"]["segment"], e["detail"]["packets"]) for e in drops] == [
        (AREA, OFFICE_1, 2), (AREA, OFFICE_2, 2)]
    stopped = j.timeline.of_kinds((EventKind.SPREAD_STOPPED,))
    assert len(stopped) == 1 and stopped[0]["time"] > drops[-1]["time"]
