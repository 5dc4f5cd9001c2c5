"""The remediation plan: what fixes, signatures, settings and disinfection steps remove the worm, which
deployment methods deliver them per host type, and who validated the process.

Pure: validated from an operator-written YAML file (pydantic, extra keys refused); the journal stores
it with the incident. Each method delivers some of what a host needs (``fix``: the vendor fix that
closes the vulnerability; ``harden``: the GPO settings; ``disinfect``: the worm removed); methods are
tried in the plan's order and a host is remediated only when verification on the host says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.core.errors import UserError
from orchestrator.core.incident import check_references
from orchestrator.core.safetext import no_control
from orchestrator.core.signoff import check_signoff
from orchestrator.core.yamlfile import load_yaml_mapping, validation_error
from orchestrator.remediation import protected

HOST_TYPES = ("linux", "windows")
ALL_NEEDS = frozenset({"fix", "harden", "disinfect"})
# What each deployment method delivers, per host type.
METHODS: dict[str, dict[str, frozenset[str]]] = {
    "linux": {
        "package": frozenset({"fix"}),            # the fixed package versions (package manager)
        "antivirus": frozenset({"disinfect"}),    # signature update, then a scan that removes the worm
        "disinfect": frozenset({"disinfect"}),    # kill the processes, remove the files, disable the services
        "manual": ALL_NEEDS,                      # a technician; recorded with irm mark-manual
    },
    "windows": {
        "wsus": frozenset({"fix"}),               # approve the KBs for the area's WSUS group, clients install
        "win_updates": frozenset({"fix"}),        # clients install the KBs from their managed server directly
        "gpo": frozenset({"harden"}),             # the plan's GPO linked to the area's OU, then gpupdate
        "antivirus": frozenset({"disinfect"}),    # Update-MpSignature, then a scan that removes the worm
        "disinfect": frozenset({"disinfect"}),    # processes, files, services, registry keys
        "manual": ALL_NEEDS,
    },
}

_KB_RE = re.compile(r"^KB\d{6,8}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9.+:~_-]{1,64}$")
_REGISTRY_RE = re.compile(r"^(HKLM|HKCU|HKCR|HKU):\\[^\r\n]+$", re.IGNORECASE)


class _Plain(BaseModel):
    """Plan text is data: no control characters anywhere (names, paths, reasons)."""

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        return no_control(value)


class PackageFix(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_RE.pattern)
    version: str = Field(pattern=_VERSION_RE.pattern, description="the fixed version (or any later one)")


class Fixes(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[str] = Field(default_factory=list, description="KB identifiers")
    linux: list[PackageFix] = Field(default_factory=list)

    @field_validator("windows")
    @classmethod
    def _kbs(cls, value: list[str]) -> list[str]:
        for kb in value:
            if not _KB_RE.match(kb):
                raise ValueError(f"'{kb}' is not a KB identifier (KB followed by 6 to 8 digits)")
        return value


class Antivirus(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signature_version: str = Field(pattern=_VERSION_RE.pattern)


class GpoSetting(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=_REGISTRY_RE.pattern, description=r"registry key, e.g. HKLM\SYSTEM\...")
    value_name: str = Field(min_length=1, max_length=256)
    type: Literal["DWord", "QWord", "String", "ExpandString", "MultiString"]
    value: str | int


class Gpo(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    settings: list[GpoSetting] = Field(min_length=1)


class Disinfection(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    processes: list[str] = Field(default_factory=list, description="exact process names or absolute executable paths")
    files: list[str] = Field(default_factory=list, description="absolute paths of the worm's files")
    services: list[str] = Field(default_factory=list, description="services the worm installed")
    registry_keys: list[str] = Field(default_factory=list, description="Windows registry keys the worm added")

    @field_validator("files")
    @classmethod
    def _files(cls, value: list[str]) -> list[str]:
        return _each(value, protected.file_problem)

    @field_validator("registry_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if not _REGISTRY_RE.match(key):
                raise ValueError(rf"'{key}' is not a registry key (HKLM:\..., HKCU:\...)")
        return _each(value, protected.key_problem)

    @field_validator("processes")
    @classmethod
    def _processes(cls, value: list[str]) -> list[str]:
        return _each(value, protected.process_problem)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return _each(value, protected.service_problem)


def _each(value: list[str], problem: Callable[[str], str | None]) -> list[str]:
    for entry in value:
        found = problem(entry)
        if found:
            raise ValueError(found)
    return value


class RemediationPlan(_Plain):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    fixes: Fixes = Field(default_factory=Fixes)
    antivirus: Antivirus | None = None
    gpo: Gpo | None = None
    disinfection: Disinfection = Field(default_factory=Disinfection)
    methods: dict[str, list[str]] = Field(min_length=1, description="per host type, in order of preference")
    references: list[str] = Field(default_factory=list, description="vendor advisories, CERT bulletins")
    validated_by: str | None = Field(default=None, max_length=200)
    validated_at: datetime | None = None

    @field_validator("references")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        return check_references(value)

    @model_validator(mode="after")
    def _signoff(self) -> RemediationPlan:
        check_signoff(self.validated_by, self.validated_at)
        return self

    @model_validator(mode="after")
    def _methods(self) -> RemediationPlan:
        for host_type, methods in self.methods.items():
            if host_type not in METHODS:
                raise ValueError(f"methods: unknown host type '{host_type}' (known: {', '.join(HOST_TYPES)})")
            if not methods:
                raise ValueError(f"methods.{host_type}: name at least one method")
            for method in methods:
                if method not in METHODS[host_type]:
                    raise ValueError(f"methods.{host_type}: unknown method '{method}' (known for {host_type}: "
                                     f"{', '.join(METHODS[host_type])})")
            if len(set(methods)) != len(methods):
                raise ValueError(f"methods.{host_type}: a method is listed twice")
            if "antivirus" in methods and self.antivirus is None:
                raise ValueError(f"methods.{host_type}: 'antivirus' needs the plan's antivirus.signature_version")
            if "gpo" in methods and self.gpo is None:
                raise ValueError(f"methods.{host_type}: 'gpo' needs the plan's gpo section")
        return self

    @property
    def validated(self) -> bool:
        return bool(self.validated_by and self.validated_by.strip()) and self.validated_at is not None

    def needs(self, host_type: str) -> frozenset[str]:
        """What a host of this type needs before verification: always disinfection, plus the fix when the
        plan has one for the type and the hardening when it has GPO settings (Windows)."""
        needs = {"disinfect"}
        if (host_type == "linux" and self.fixes.linux) or (host_type == "windows" and self.fixes.windows):
            needs.add("fix")
        if host_type == "windows" and self.gpo is not None:
            needs.add("harden")
        return frozenset(needs)

    def methods_for(self, host_type: str) -> list[str]:
        return list(self.methods.get(host_type, []))


def plan_from_file(path: Path) -> RemediationPlan:
    data = load_yaml_mapping(path, "name, fixes, antivirus, gpo, disinfection, methods, references, validated_by")
    try:
        return RemediationPlan.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None


def require_validated(plan: RemediationPlan, where: str) -> None:
    if not plan.validated:
        raise UserError(f"{where}: the plan is not validated: set validated_by (who validated the disinfection "
                        "process, e.g. your CERT) and validated_at (when) before remediating")
