"""Every entry of the list of what a remediation plan may never name (orchestrator/remediation/protected.py)
is refused by the plan validator, in each form it can be written; the worm's own names pass."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.remediation import protected
from orchestrator.remediation.plan import RemediationPlan
from tests.conftest import ROOT

PLAN: dict[str, Any] = yaml.safe_load((ROOT / "plans" / "lab-worm.yml").read_text())


def _refused(field: str, value: str) -> str:
    data = {**PLAN, "disinfection": {**PLAN["disinfection"], field: [value]}}
    with pytest.raises(ValidationError) as exc:
        RemediationPlan.model_validate(data)
    return str(exc.value)


@pytest.mark.parametrize("name", sorted(protected.ESSENTIAL_PROCESSES))
def test_every_essential_process_is_refused_by_name_and_in_the_system_s_directories(name: str) -> None:
    _refused("processes", name)
    _refused("processes", name.upper() + ".exe")
    exe = name if " " in name else name + ".exe"
    _refused("processes", f"C:\\Windows\\System32\\{exe}")
    _refused("processes", f"/usr/sbin/{name}")
    _refused("files", f"/usr/bin/{name}")


@pytest.mark.parametrize("name", sorted(protected.ESSENTIAL_SERVICES))
def test_every_essential_service_is_refused(name: str) -> None:
    _refused("services", name)
    _refused("services", name.upper())
    if not name.endswith(".socket"):
        _refused("services", name + ".service")
        _refused("registry_keys", f"HKLM:\\SYSTEM\\CurrentControlSet\\Services\\{name}")


@pytest.mark.parametrize("path", sorted(protected.PROTECTED_DIRS
                                        | set(protected._PROTECTED_TREES) | protected._PROTECTED_FILES))
def test_every_protected_directory_and_file_is_refused(path: str) -> None:
    if path.startswith("/"):
        forms = [path, path.upper() if path.startswith("/etc") else path]  # Linux: as written
    else:  # Windows, kept without its drive: on any drive, either separator, any case
        forms = ["C:\\" + path.replace("/", "\\"), ("d:/" + path).upper()]
    for form in forms:
        _refused("files", form)
    if path in protected._PROTECTED_TREES:
        _refused("files", path + "/x" if path.startswith("/") else "E:\\" + path.replace("/", "\\") + "\\x")


@pytest.mark.parametrize("key", sorted(protected._PROTECTED_KEYS | set(protected._PROTECTED_KEY_TREES)))
def test_every_protected_registry_key_is_refused(key: str) -> None:
    win = key.replace("/", "\\")
    _refused("registry_keys", f"HKLM:\\{win}")
    _refused("registry_keys", f"hklm:\\{win.upper()}\\")
    if key in protected._PROTECTED_KEY_TREES:
        _refused("registry_keys", f"HKLM:\\{win}\\Anything")


@pytest.mark.parametrize(("field", "value"), [
    ("processes", "*"), ("processes", "worm?"), ("files", "/tmp/*"), ("files", "C:\\Temp\\[ab].exe"),
    ("services", "Worm*"), ("registry_keys", "HKLM:\\SOFTWARE\\*"),
])
def test_wildcards_are_refused_in_every_field(field: str, value: str) -> None:
    assert "wildcard" in _refused(field, value)


def test_the_worm_s_own_names_pass() -> None:
    data = {**PLAN, "disinfection": {
        "processes": ["labworm", "/tmp/.labworm/labworm", "C:\\Windows\\Temp\\svchost.exe", "/usr/bin/labworm"],
        "files": ["/tmp/.labworm/labworm", "/usr/bin/labworm", "C:\\Users\\Public\\worm.exe"],
        "services": ["labworm.service", "LabWormSvc"],
        "registry_keys": ["HKLM:\\SOFTWARE\\LabWorm", "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\LabWormSvc"]}}
    RemediationPlan.model_validate(data)
