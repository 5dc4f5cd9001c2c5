"""The incident record: what worm, through which vectors, with which signatures and references.

Pure: validated from CLI flags or a YAML file; the journal stores it. Vectors are what containment
blocks east-west and what a critical flow may never match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.core.errors import UserError
from orchestrator.core.safetext import text_problem
from orchestrator.core.yamlfile import load_yaml_mapping, validation_error

_VECTOR_RE = re.compile(r"^(tcp|udp)/(\d{1,5})$")
_REFERENCE_RE = re.compile(r"^(CVE-\d{4}-\d{4,}|KB\d{6,8}|MS\d{2}-\d{3}|https?://\S+)$")


class Vector(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: Literal["tcp", "udp"]
    port: int = Field(ge=1, le=65535)

    def __str__(self) -> str:
        return f"{self.protocol}/{self.port}"

    @classmethod
    def parse(cls, text: str) -> Vector:
        m = _VECTOR_RE.match(text.strip().lower())
        if not m:
            raise ValueError(f"'{text}' is not a vector (expected tcp/PORT or udp/PORT, e.g. tcp/445)")
        return cls(protocol=m.group(1), port=int(m.group(2)))


class IncidentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    worm: str = Field(min_length=1, max_length=200)
    vectors: list[Vector] = Field(min_length=1)
    signatures: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list, description="CVE, KB, MS bulletin ids or URLs")

    @field_validator("vectors", mode="before")
    @classmethod
    def _vectors_from_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [Vector.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("references")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        return check_references(value)

    @field_validator("worm", "signatures")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        for text in [value] if isinstance(value, str) else value:
            problem = text_problem(text, limit=200)
            if problem:
                raise ValueError(problem)
        return value


def check_references(value: list[str]) -> list[str]:
    """CVE, KB or MS bulletin ids, or http(s) URLs (a pydantic field validator's body)."""
    for ref in value:
        if not _REFERENCE_RE.match(ref):
            raise ValueError(f"'{ref}' is not a CVE-YYYY-NNNN, KBnnnnnn, MSyy-nnn id or an http(s) URL")
    return value


def spec_from_flags(worm: str | None, vectors: list[str], signatures: list[str], references: list[str]) -> IncidentSpec:
    if not worm:
        raise UserError("incident: --worm NAME (or --file FILE) is required")
    if not vectors:
        raise UserError("incident: at least one --vector (tcp/PORT or udp/PORT) is required")
    try:
        return IncidentSpec(worm=worm, vectors=vectors, signatures=signatures, references=references)
    except ValidationError as exc:
        raise validation_error(exc, "incident flags") from None


def spec_from_file(path: Path) -> IncidentSpec:
    data = load_yaml_mapping(path, "worm, vectors, signatures, references")
    try:
        return IncidentSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None
