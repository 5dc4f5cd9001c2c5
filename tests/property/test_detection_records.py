"""Every detection source against records an attacker shapes: each line is parsed or skipped and
counted, never an exception; what irm keeps of a record carries no control character and is bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.inventory.load import load_inventory
from orchestrator.identification.sources import AvLogSource, DefenderEventsSource, SuricataEveSource, WazuhAlertsSource
from tests.conftest import LAB_INVENTORY

INV = load_inventory(LAB_INVENTORY)
SINCE = datetime(1, 1, 2, tzinfo=UTC)
KINDS = ("suricata", "wazuh", "defender", "lab_av")

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=50),
                     st.sampled_from(["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
                                      "2026-11-27T08:00:01+00:00", "198.18.32.11", "x-ws11", "alert",
                                      "/Date(-99999999999999999)/", "/Date(253402300800000)/", "\x1b[2J"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                       max_leaves=20)
# records with the fields each source reads, their values anything
_fields = st.fixed_dictionaries({}, optional={
    "timestamp": _values, "time": _values, "event_type": st.sampled_from(["alert", "flow", 3]), "src_ip": _values,
    "alert": st.fixed_dictionaries({}, optional={"signature_id": _values, "severity": _values, "action": _values,
                                                 "signature": _values}),
    "rule": st.fixed_dictionaries({}, optional={"level": _values, "id": _values, "description": _values}),
    "agent": st.fixed_dictionaries({}, optional={"name": _values, "ip": _values}), "data": _values,
    "Id": st.sampled_from([1116, 1117, "1116", None]), "MachineName": _values, "TimeCreated": _values,
    "Message": _values, "signature": _values, "action": _values, "source_address": _values})


def _source(kind: str, path: Path) -> Any:
    if kind == "suricata":
        return SuricataEveSource(INV, path)
    if kind == "wazuh":
        return WazuhAlertsSource(INV, path)
    if kind == "defender":
        return DefenderEventsSource(INV, path)
    host = INV.hosts["x-ws11"].model_copy(update={"av_log": str(path)})
    inv = INV.model_copy(update={"hosts": {**INV.hosts, "x-ws11": host}})
    return AvLogSource(inv, "subsidiary-x")


def _check(kind: str, path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    source = _source(kind, path)
    found = source.detections(SINCE)  # never raises
    for d in found:
        for text in (d.signature, d.action, d.source_address or ""):
            assert len(text) <= 203 and not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in text), text


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.one_of(_fields, _values), min_size=1, max_size=5))
def test_generated_records_are_parsed_or_skipped_never_fatal(kind: str, records: list[Any], tmp_path: Path) -> None:
    lines = []
    for rec in records:
        try:
            lines.append(json.dumps(rec, allow_nan=True).encode())
        except (ValueError, RecursionError):
            continue
    _check(kind, tmp_path / f"{kind}.json", lines)


HOSTILE = {
    "infinity-sid": b'{"event_type":"alert","timestamp":"2026-11-27T08:00:01+00:00","src_ip":"198.18.32.11",'
                    b'"alert":{"signature_id":Infinity,"severity":1}}',
    "infinity-level": b'{"timestamp":"2026-11-27T08:00:01+00:00","rule":{"level":Infinity,"id":"1"},'
                      b'"agent":{"name":"x-ws11"}}',
    "calendar-start": b'{"timestamp":"0001-01-01T00:30:00+01:00","time":"0001-01-01T00:30:00+01:00",'
                      b'"event_type":"alert","src_ip":"198.18.32.11","alert":{"signature_id":1,"severity":1}}',
    "calendar-end": b'{"timestamp":"9999-12-31T23:30:00-01:00","time":"9999-12-31T23:30:00-01:00",'
                    b'"event_type":"alert","src_ip":"198.18.32.11","alert":{"signature_id":1,"severity":1}}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "escape": b'{"event_type":"alert","timestamp":"2026-11-27T08:00:01+00:00","src_ip":"198.18.32.11",'
              b'"time":"2026-11-27T08:00:01+00:00","alert":{"signature_id":1,"severity":1,'
              b'"signature":"\\u001b[2J\\u001b]0;pwned\\u0007W"},"signature":"\\u001b[2JW"}',
    "huge": b'{"event_type":"alert","timestamp":"2026-11-27T08:00:01+00:00","src_ip":"198.18.32.11",'
            b'"time":"2026-11-27T08:00:01+00:00","alert":{"signature_id":1,"severity":1,"signature":"'
            + b"S" * 100_000 + b'"},"signature":"' + b"S" * 100_000 + b'"}',
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_records_are_skipped_or_kept_escaped_and_bounded(kind: str, case: str, tmp_path: Path) -> None:
    _check(kind, tmp_path / f"{kind}.json", [HOSTILE[case]])
