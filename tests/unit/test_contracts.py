"""The typed boundary between irm and its plays (``core.contracts``) against the Ansible side: every extra
var a boundary stage sends is consumed by its playbooks or is an option of the role, every option the
variable mapping feeds the role exists in its ``argument_specs.yml``, and every fact irm reads back is
one the module documents or the role sets. A variable renamed on one side fails here."""

from __future__ import annotations

import re
from typing import Any

import yaml

from orchestrator.containment.table import CONTAINMENT
from orchestrator.core.contracts import StageFacts, StageVars
from orchestrator.recovery.table import RECOVERY
from tests.conftest import COLLECTION, ROOT

PLAYBOOKS = ROOT / "playbooks"
ROLE = COLLECTION / "roles" / "firewall_policy"


def _role_options(role: str) -> set[str]:
    specs = yaml.safe_load((COLLECTION / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return {o for entry in specs["argument_specs"].values() for o in (entry.get("options") or {})}


def _mapping() -> dict[str, Any]:
    return dict(yaml.safe_load((PLAYBOOKS / "vars" / "roles.yml").read_text()))


def _stage_playbooks() -> list[str]:
    names = {p.playbook for p in (*CONTAINMENT, *RECOVERY)} | {str(p.rollback) for p in RECOVERY}
    return [(PLAYBOOKS / f"{n}.yml").read_text() for n in sorted(names)]


def test_every_extra_var_a_stage_sends_is_consumed() -> None:
    text = "\n".join([*_stage_playbooks(), (PLAYBOOKS / "vars" / "roles.yml").read_text()])
    options = _role_options("firewall_policy")
    unused = [f for f in StageVars.model_fields if f not in options and not re.search(rf"\b{f}\b", text)]
    assert not unused, f"sent to the plays, read by none: {unused}"


def test_the_mapping_feeds_only_options_the_roles_declare_from_vars_irm_sends_or_the_inventory_holds() -> None:
    from orchestrator.core.inventory.model import KNOWN_KEYS

    sent = set(StageVars.model_fields) | {"irm_plan", "irm_health"}  # remediation's plays get these two
    problems = []
    for option, value in _mapping().items():
        role = next(r for r in ("firewall_policy", "remediation", "removable_media", "baseline_snapshot")
                    if option.startswith(r + "_"))
        if option not in _role_options(role):
            problems.append(f"{option}: not an option of {role}")
        for var in re.findall(r"\b(irm_[a-z_]+)\b", str(value)):
            if var not in sent and var not in KNOWN_KEYS:
                problems.append(f"{option}: reads {var}, which irm neither sends nor knows as an inventory key")
    assert not problems, "\n".join(problems)


def test_every_fact_irm_reads_back_is_documented_by_the_module_or_set_by_the_role() -> None:
    module = (COLLECTION / "plugins" / "modules" / "irm_nft.py").read_text()
    returns = set(yaml.safe_load(module.split('RETURN = r"""')[1].split('"""')[0]))
    role_sets = set(re.findall(r"^\s*(irm_[a-z_]+):", "\n".join(
        p.read_text() for p in (ROLE / "tasks").glob("*.yml")), re.M))
    missing = [f for f in StageFacts.model_fields if f not in returns | role_sets]
    assert not missing, f"read back by irm, returned by nothing: {missing}"


def test_every_stage_of_the_tables_sends_and_returns_the_contract() -> None:
    for phase in (*CONTAINMENT, *RECOVERY):
        assert phase.sends is StageVars and phase.returns is StageFacts, phase.name


def test_a_renamed_or_unknown_extra_var_is_refused_before_any_play_runs() -> None:
    import pytest
    from pydantic import ValidationError

    base: dict[str, Any] = {f: "" for f in ("irm_targets", "irm_targets_linux", "irm_targets_windows", "irm_token")}
    base |= {"irm_policies": {}, "irm_fingerprints": {}, "irm_takeover_tokens": [], "irm_expect": {},
             "irm_expect_policies": {}, "firewall_policy_confirm_timeout": 60, "irm_reach": {}}
    StageVars(**base)
    with pytest.raises(ValidationError, match="irm_media_target_linux"):
        StageVars(**{**base, "irm_media_target_linux": "x-ws11"})  # mypy refuses the keyword too
