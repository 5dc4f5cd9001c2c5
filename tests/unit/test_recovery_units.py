"""Recovery's pure parts: durations, the path evaluator behind the soak probes, and CLI refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core import checks
from orchestrator.core.errors import UserError
from orchestrator.core.incident import Vector
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.posture import AreaState, policies
from orchestrator.recovery.phase import parse_duration
from tests.conftest import LAB_INVENTORY, irm

SMB = [Vector(protocol="tcp", port=4445)]


@pytest.mark.parametrize(("text", "seconds"), [("60", 60.0), ("60s", 60.0), ("2m", 120.0), ("1h", 3600.0),
                                               ("0.5s", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5x", "", "-3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UserError):
        parse_duration(text)


def test_the_path_evaluator_follows_each_posture() -> None:
    inv = load_inventory(LAB_INVENTORY)
    connected = policies(inv, SMB, {})
    isolated = policies(inv, SMB, {"subsidiary-x": AreaState(posture="isolated", vectors_blocked=True,
                                                             quarantined={"subsidiary-x/office-1"})})
    cases = [("x-ws11", "x-ws12", 22), ("x-ws11", "x-ws21", 22), ("hq-ws1", "x-ws11", 22), ("x-ws21", "hq-erp", 8069),
             ("x-ws11", "hq-erp", 8069), ("x-ws11", "inet-web", 80), ("x-ws11", "x-ws12", 4445)]
    assert all(checks.allows(inv, connected, *c) for c in cases)
    assert [checks.allows(inv, isolated, *c) for c in cases] == [
        True,   # same segment: no boundary between them
        False,  # office-1 quarantined at the gateway
        False,  # the LAN cannot enter an isolated area
        True,   # the validated critical flow from office-2
        True,   # ... from quarantined office-1 too (IRM #1 repeats isolation and the flows per sub-area)
        False,  # no Internet
        False,  # the vector, blocked on the hosts themselves
    ]


def test_recover_and_approve_refuse_bad_input_in_one_line(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    irm("incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal", journal, check=True)
    for args, message in (
        (["recover", "--area", "subsidiary-x", "--soak", "soon"], "'soon' is not a duration (e.g. 60, 60s, 2m)"),
        (["recover", "--area", "nowhere"], "unknown area 'nowhere'"),
        (["approve", "--area", "subsidiary-x", "--key", "/nonexistent", "--reason", " "],
         "approve: --reason must not be empty"),
        (["approve", "--area", "subsidiary-x", "--key", "/nonexistent", "--reason", "ok"],
         "--key /nonexistent: cannot be read (No such file or directory)"),
    ):
        proc = irm(*args, "--journal", journal)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
