"""Identification: detections grouped into a perimeter (threshold per sub-area over a sliding window),
patient zero, the critical flows the perimeter touches, the downtime cost, and the next commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.core.detection import Detection
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.model import DetectionThreshold
from orchestrator.identification.identify import identify, peak
from tests.conftest import LAB_INVENTORY

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _d(seconds: float, host: str, signature: str = "Lab.Worm.IRM-A", vector: str | None = None) -> Detection:
    """A host detection; with a vector, a network one (an IDS alert names the exploit)."""
    inv = load_inventory(LAB_INVENTORY)
    h = inv.hosts[host]
    return Detection(time=T0 + timedelta(seconds=seconds), host=host, signature=signature, action="detected",
                     source_address=str(h.address), segment=h.segment, area=h.area, vector=vector,
                     network=vector is not None)


def test_peak_counts_the_busiest_window() -> None:
    times = [T0 + timedelta(seconds=s) for s in (0, 10, 20, 100, 105, 106, 107)]
    assert peak(times, timedelta(seconds=10)) == 4  # 100, 105, 106, 107
    assert peak(times, timedelta(seconds=200)) == 7
    assert peak([], timedelta(seconds=1)) == 0


def test_the_perimeter_impact_and_next_commands() -> None:
    inv = load_inventory(LAB_INVENTORY)
    dets = sorted([
        _d(0, "x-ws11", "IRM-LAB exploit", vector="tcp/4445"), _d(1, "x-ws11", "IRM-LAB exploit", vector="tcp/4445"),
        _d(5, "x-ws12"), _d(9, "x-ws11"),
        _d(30, "x-ws21"),  # office-2: one detection, below a threshold of 2
        _d(40, "y-ws21", "IRM-LAB exploit", vector="tcp/4445"), _d(41, "y-ws21"),  # plant: 2 within 60 s
        _d(50, "gw-x"),  # a boundary: in no area
    ], key=lambda d: d.time)
    result = identify(inv, dets, T0, DetectionThreshold(detections=2, within=60), {"subsidiary-y": "isolated"},
                      {"suricata:/x": 3}, incident_open=False)
    assert result.perimeter == ["subsidiary-x", "subsidiary-y"]
    assert result.patient_zero == "x-ws11" and result.first_seen == T0
    x = result.areas[0]
    assert [(s.segment, s.detections, s.peak, s.over_threshold) for s in x.segments] == [
        ("subsidiary-x/office-1", 4, 4, True), ("subsidiary-x/office-2", 1, 1, False)]
    assert [(h.host, h.detections) for h in x.segments[0].hosts] == [("x-ws11", 3), ("x-ws12", 1)]
    assert x.patient_zero == "x-ws11" and x.posture == "connected"
    assert [h.host for h in result.outside] == ["gw-x"]
    assert result.vectors == ["tcp/4445"]
    # the ERP flow's sources are subsidiary-x's offices: it touches the perimeter's x hosts
    assert [(f.flow, f.owner, f.touches, f.kept_open) for f in result.impact] == [
        ("erp-orders", "Finance (order entry)", ["x-ws11", "x-ws12", "x-ws21"], True)]
    assert result.cost_per_hour() == 8000
    # subsidiary-y is already isolated: only subsidiary-x is left to contain
    assert result.next_commands == [
        # the worm's name from the AV (the IDS names the exploit), the vector from the IDS
        "irm incident open --worm Lab.Worm.IRM-A --vector tcp/4445 --signature Lab.Worm.IRM-A "
        "--signature 'IRM-LAB exploit'",
        "irm contain --area subsidiary-x"]
    data = result.to_json()
    assert data["perimeter"] == ["subsidiary-x", "subsidiary-y"] and data["unmapped"] == {"suricata:/x": 3}
    assert data["impact"]["downtime_cost_per_hour"] == 8000


def test_below_every_threshold_nothing_is_proposed() -> None:
    inv = load_inventory(LAB_INVENTORY)
    result = identify(inv, [_d(0, "hq-ws1")], T0, DetectionThreshold(detections=3, within=60), {}, {},
                      incident_open=True)
    assert result.perimeter == [] and result.next_commands == [] and result.cost_per_hour() is None
    assert [a.area for a in result.areas] == ["hq"]  # shown, not proposed
    assert identify(inv, [], T0, DetectionThreshold(), {}, {}, incident_open=False).next_commands == []


def test_patient_zero_is_the_host_nobody_infected_not_the_first_alert() -> None:
    """An IDS alert on x-ws13's routed attempt comes before x-ws11's AV report; x-ws13's AV names x-ws11
    as its infector: x-ws11 is patient zero."""
    from orchestrator.identification.identify import patient_zero

    inv = load_inventory(LAB_INVENTORY)
    first_alert = _d(0.2, "x-ws13", "IRM-LAB exploit", vector="tcp/4445")
    seeded = _d(1.0, "x-ws11").__class__(**{**_d(1.0, "x-ws11").__dict__, "source_address": "198.19.0.66"})
    infected = _d(1.1, "x-ws13").__class__(**{**_d(1.1, "x-ws13").__dict__, "source_address": "198.18.32.11"})
    assert patient_zero(inv, [first_alert, seeded, infected]) == "x-ws11"
    assert patient_zero(inv, [first_alert]) == "x-ws13"  # nothing says otherwise
    assert patient_zero(inv, []) is None


def test_the_next_commands_keep_the_inventory_and_sources_identify_was_given() -> None:
    inv = load_inventory(LAB_INVENTORY)
    seen = [_d(0, "x-ws11"), _d(5, "x-ws12")]
    result = identify(inv, seen, T0, DetectionThreshold(detections=1), {}, {}, incident_open=True,
                      inventory_arg="/etc/irm/inv", sources=["suricata:/var/log/suricata/eve.json", "lab_av"])
    assert result.next_commands == ["irm contain -i /etc/irm/inv --source suricata:/var/log/suricata/eve.json "
                                    "--source lab_av --area subsidiary-x"]
