"""The AV log source: bad lines skipped and counted, times in UTC whatever the log wrote, rotation and
truncation followed, and the host is whose log it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.identification.sources import AvLogSource
from tests.conftest import LAB_INVENTORY


@pytest.fixture()
def inv(tmp_path: Path) -> Inventory:
    loaded = load_inventory(LAB_INVENTORY)
    hosts = {}
    for name, host in loaded.hosts.items():
        log = str(tmp_path / f"{name}.log") if host.kind == "area" else host.av_log
        hosts[name] = host.model_copy(update={"av_log": log})
    return loaded.model_copy(update={"hosts": hosts})


def line(**rec: object) -> str:
    return json.dumps(rec) + "\n"


def test_bad_lines_are_counted_times_are_utc_and_the_host_is_the_log_owner(inv: Inventory, tmp_path: Path) -> None:
    log = tmp_path / "x-ws11.log"
    log.write_text(
        line(time="2026-11-26T10:00:00", host="x-ws11", signature="W")  # no zone: UTC
        + line(time="2026-11-26T12:00:00+02:00", host="hq-erp", signature="W")  # forged host, +02:00
        + "not json\n" + line(time="yesterday") + line(host="x-ws11") + line(time=5) + "\x00\xff garbage\n")
    source = AvLogSource(inv, "subsidiary-x")
    found = source.detections(datetime(2026, 11, 26, tzinfo=UTC))
    assert [(d.host, d.time) for d in found] == [("x-ws11", datetime(2026, 11, 26, 10, tzinfo=UTC)),
                                                 ("x-ws11", datetime(2026, 11, 26, 10, tzinfo=UTC))]
    assert source.skipped == {"x-ws11": 5}


def test_rotation_and_truncation_are_followed(inv: Inventory, tmp_path: Path) -> None:
    log = tmp_path / "x-ws12.log"
    since = datetime(2026, 1, 1, tzinfo=UTC)
    log.write_text(line(time="2026-11-26T10:00:00Z", signature="A") * 3)
    source = AvLogSource(inv, "subsidiary-x")
    assert len(source.detections(since)) == 3
    log.write_text(line(time="2026-11-26T11:00:00Z", signature="B"))  # truncated, then written again
    assert [d.signature for d in source.detections(since)][-1] == "B"
    rotated = tmp_path / "x-ws12.log.1"
    log.rename(rotated)
    log.write_text(line(time="2026-11-26T12:00:00Z", signature="C") * 5)  # a new file (another inode)
    assert [d.signature for d in source.detections(since)].count("C") == 5
