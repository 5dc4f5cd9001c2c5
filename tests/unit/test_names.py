from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core import names

NAME = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5}){0,3}", fullmatch=True)


@given(NAME)
def test_area_group_round_trip(area: str) -> None:
    group = names.area_group(area)
    assert "-" not in group
    assert names.parse_area_group(group) == area


@given(NAME, NAME, st.sampled_from(["sub_area", "mobile"]))
def test_segment_group_round_trip(area: str, segment: str, kind: names.SegmentKind) -> None:
    group = names.segment_group(area, segment, kind)
    assert names.parse_segment_group(group) == (kind, area, segment)
    assert names.parse_area_group(group) is None


def test_documented_examples() -> None:
    assert names.area_group("subsidiary-x") == "area_subsidiary_x"
    assert names.parse_segment_group("subarea_subsidiary_x__office_1") == ("sub_area", "subsidiary-x", "office-1")
    assert names.parse_segment_group("mobile_subsidiary_x__vpn") == ("mobile", "subsidiary-x", "vpn")
    assert names.parse_area_group("area_subsidiary__x") is None  # '__' never comes from a name
    assert not names.is_valid_name("Subsidiary-X") and not names.is_valid_name("a--b")
