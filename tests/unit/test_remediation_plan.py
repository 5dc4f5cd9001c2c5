"""The remediation plan model and the refusals of `irm remediate` before anything is applied."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
import yaml

from orchestrator.core.errors import UserError
from orchestrator.core.journal import Journal
from orchestrator.remediation.plan import RemediationPlan, plan_from_file
from tests.conftest import ROOT, irm

LAB_PLAN = ROOT / "plans" / "lab-worm.yml"


def _plan(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(LAB_PLAN.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_lab_plan_is_valid_and_validated() -> None:
    plan = plan_from_file(LAB_PLAN)
    assert plan.validated and plan.validated_by
    assert plan.needs("linux") == {"fix", "disinfect"}
    assert plan.methods_for("linux") == ["package", "antivirus", "disinfect"]


@pytest.mark.parametrize(("change", "message"), [
    ({"methods": {"solaris": ["package"]}}, "methods: unknown host type 'solaris' (known: linux, windows)"),
    ({"methods": {"linux": ["wsus"]}}, "methods.linux: unknown method 'wsus' (known for linux: package, antivirus"),
    ({"methods": {"linux": ["package", "package"]}}, "methods.linux: a method is listed twice"),
    ({"antivirus": None}, "methods.linux: 'antivirus' needs the plan's antivirus.signature_version"),
    ({"fixes": {"windows": ["Q123"]}}, "key 'fixes.windows': 'Q123' is not a KB identifier"),
    ({"disinfection": {"files": ["/"]}}, "key 'disinfection.files': '/' is a root, system or user-profile"),
    *[({"disinfection": {"files": [wide]}}, f"key 'disinfection.files': '{wide}' is a root, system or user-profile")
      for wide in ("/etc", "/ETC/", "/usr//bin", "C:\\", "D:\\", "c:\\windows", "C:\\Windows\\System32\\",
                   "C:\\Program Files", "C:\\Users")],
    ({"disinfection": {"files": ["/var/lib/../etc"]}}, "'/var/lib/../etc' is not a plain path"),
    *[({"disinfection": {"registry_keys": [key]}}, f"key 'disinfection.registry_keys': '{key}' is a hive or a system")
      for key in ("HKLM:\\SOFTWARE", "hklm:\\software\\", "HKLM:\\SYSTEM\\CurrentControlSet\\Services",
                  "HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Run")],
    ({"disinfection": {"files": ["tmp/x"]}}, "key 'disinfection.files': 'tmp/x' is not an absolute path"),
    ({"references": ["see the wiki"]}, "key 'references': 'see the wiki' is not a CVE"),
    ({"methodz": {}}, "key 'methodz': Extra inputs are not permitted"),
])
def test_plan_errors_name_the_file_the_key_and_the_problem(tmp_path: Path, change: dict[str, object],
                                                           message: str) -> None:
    path = _plan(tmp_path, **change)
    with pytest.raises(UserError) as exc:
        plan_from_file(path)
    assert any(line.startswith(f"{path}:") and message in line for line in exc.value.problems), exc.value.problems


def test_needs_follow_the_plan() -> None:
    plan = RemediationPlan.model_validate({
        "name": "p", "methods": {"windows": ["wsus", "gpo", "manual"]}, "fixes": {"windows": ["KB5005565"]},
        "gpo": {"name": "IRM - disable SMBv1", "settings": [{"key": "HKLM:\\SYSTEM\\CurrentControlSet\\Services"
                                                             "\\LanmanServer\\Parameters", "value_name": "SMB1",
                                                             "type": "DWord", "value": 0}]}})
    assert plan.needs("windows") == {"fix", "harden", "disinfect"}
    assert plan.needs("linux") == {"disinfect"}
    assert not plan.validated


@pytest.fixture()
def journal_with_incident(tmp_path: Path) -> Path:
    journal = tmp_path / "journal.db"
    irm("incident", "open", "--worm", "Lab.Worm.IRM-A", "--vector", "tcp/4445", "--journal", str(journal), check=True)
    return journal


def _nothing_applied(journal: Path) -> None:
    with closing(Journal.reader(journal)) as j:
        for inc in j.incidents.all():
            assert j.stages.of(inc.id) == [] and j.remediation.of(inc.id) == {}
            assert all(j.remediation.latest_plan(inc.id, area) is None for area in ("subsidiary-x", "hq"))


def _remediate(journal: Path, plan: Path, *extra: str) -> tuple[int, str]:
    proc = irm("remediate", "--area", "subsidiary-x", "--plan", str(plan), "--yes", "--journal", str(journal), *extra)
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stderr


def test_an_unvalidated_plan_is_refused(tmp_path: Path, journal_with_incident: Path) -> None:
    rc, err = _remediate(journal_with_incident, _plan(tmp_path, validated_by=None))
    assert rc == 2
    assert "the plan is not validated: set validated_by" in err and "nothing was applied" in err
    _nothing_applied(journal_with_incident)


def test_an_area_that_is_not_contained_is_refused(journal_with_incident: Path) -> None:
    rc, err = _remediate(journal_with_incident, LAB_PLAN)
    assert rc == 2
    assert ("area 'subsidiary-x' is not contained (posture connected, vectors open, mobile connected): "
            "run irm contain --area subsidiary-x first") in err
    _nothing_applied(journal_with_incident)


@pytest.mark.parametrize(("change", "message"), [
    ({"methods": {"solaris": ["package"]}}, "unknown host type 'solaris'"),
    ({"methods": {"linux": ["package", "teleport"]}}, "unknown method 'teleport'"),
])
def test_a_plan_naming_an_unknown_host_type_or_method_is_refused(tmp_path: Path, journal_with_incident: Path,
                                                                 change: dict[str, object], message: str) -> None:
    rc, err = _remediate(journal_with_incident, _plan(tmp_path, **change))
    assert rc == 2 and message in err and err.count("\n") <= 2
    _nothing_applied(journal_with_incident)


def test_canaries_must_be_in_the_area(journal_with_incident: Path) -> None:
    rc, err = _remediate(journal_with_incident, LAB_PLAN, "--canary", "hq-ws1,nope")
    assert rc == 2 and "--canary: hq-ws1, nope not in area 'subsidiary-x'" in err
    _nothing_applied(journal_with_incident)


def test_mark_manual_needs_a_remediation_first(journal_with_incident: Path) -> None:
    proc = irm("mark-manual", "x-ws13", "--technician", "tech", "--journal", str(journal_with_incident))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("no remediation plan stored for area 'subsidiary-x' in incident 1: run irm remediate --area "
            "subsidiary-x --plan FILE first") in proc.stderr
