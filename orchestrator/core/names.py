"""The one mapping between names operators type and Ansible group names.

Operators say ``subsidiary-x``; Ansible group names cannot hold ``-``. Area and segment names are
lowercase words joined by single dashes (``^[a-z][a-z0-9]*(-[a-z0-9]+)*$``), so writing ``-`` as
``_`` is reversible, and ``__`` (never produced by a name) separates an area from its segment:

    area ``subsidiary-x``               <->  group ``area_subsidiary_x``
    sub-area ``subsidiary-x/office-1``  <->  group ``subarea_subsidiary_x__office_1``
    mobile ``subsidiary-x/vpn``         <->  group ``mobile_subsidiary_x__vpn``
"""

from __future__ import annotations

import re
from typing import Literal

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_GROUP_WORD = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
AREA_PREFIX = "area_"
SEGMENT_PREFIXES: dict[str, Literal["sub_area", "mobile"]] = {"subarea_": "sub_area", "mobile_": "mobile"}
_AREA_GROUP_RE = re.compile(rf"^area_({_GROUP_WORD})$")
_SEGMENT_GROUP_RE = re.compile(rf"^(subarea|mobile)_({_GROUP_WORD})__({_GROUP_WORD})$")

SegmentKind = Literal["sub_area", "mobile"]


def is_valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


def area_group(area: str) -> str:
    return AREA_PREFIX + area.replace("-", "_")


def segment_group(area: str, segment: str, kind: SegmentKind) -> str:
    prefix = "subarea_" if kind == "sub_area" else "mobile_"
    return f"{prefix}{area.replace('-', '_')}__{segment.replace('-', '_')}"


def looks_like_irm_group(group: str) -> bool:
    """True for groups whose prefix claims they are areas or segments (then their name must parse)."""
    return group.startswith(AREA_PREFIX) or any(group.startswith(p) for p in SEGMENT_PREFIXES)


def parse_area_group(group: str) -> str | None:
    m = _AREA_GROUP_RE.match(group)
    return m.group(1).replace("_", "-") if m else None


def parse_segment_group(group: str) -> tuple[SegmentKind, str, str] | None:
    """``subarea_subsidiary_x__office_1`` -> ("sub_area", "subsidiary-x", "office-1")."""
    m = _SEGMENT_GROUP_RE.match(group)
    if not m:
        return None
    kind: SegmentKind = "sub_area" if m.group(1) == "subarea" else "mobile"
    return kind, m.group(2).replace("_", "-"), m.group(3).replace("_", "-")


def qualified_segment(area: str, segment: str) -> str:
    """The name operators type for a sub-area or mobile segment: ``area/segment``."""
    return f"{area}/{segment}"
