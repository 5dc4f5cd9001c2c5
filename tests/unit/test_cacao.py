"""irm export cacao: the plan and the as-run response as CACAO v2.0 playbooks, validated against the
official OASIS schemas and irm's own checks; each check is shown to fail on a playbook that breaks it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.aftermath import cacao
from orchestrator.containment.phase import Containment, ContainRequest
from orchestrator.containment.table import CONTAINMENT
from orchestrator.core.errors import UserError
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.journal import Journal
from orchestrator.recovery.table import RECOVERY
from tests.conftest import LAB_INVENTORY, irm
from tests.fakes.runner import FakeProber, FakeRunner, NoDetections, without_channels

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return without_channels(load_inventory(LAB_INVENTORY))


def _chain(doc: dict[str, Any], first: str) -> list[dict[str, Any]]:
    """The steps of one branch from ``first`` to its end step."""
    out, sid = [], first
    while doc["workflow"][sid]["type"] != "end":
        out.append(doc["workflow"][sid])
        sid = doc["workflow"][sid]["on_completion"]
    return out


def _ext(step: dict[str, Any]) -> dict[str, Any]:
    ext: dict[str, Any] = step["step_extensions"][cacao.EXTENSION]
    return ext


def test_the_plan_of_one_area_is_valid_and_in_irm_order(inv: Inventory) -> None:
    doc = cacao.plan(inv, ["subsidiary-y"])
    assert cacao.schema_errors(doc) == [] and cacao.semantic_errors(doc) == []
    assert doc["spec_version"] == "cacao-2.0" and doc["id"].startswith("playbook--")
    assert TS.match(doc["created"]) and TS.match(doc["modified"])
    start = doc["workflow"][doc["workflow_start"]]
    steps = _chain(doc, start["on_completion"])  # one area: no parallel step
    kinds = [(_ext(s)["phase"], _ext(s)["stage"]) if "step_extensions" in s else ("approval", "") for s in steps]
    assert kinds == ([("containment", p.name) for p in CONTAINMENT] + [("remediation", "remediation")]
                     + [("approval", "")] * max(1, len(inv.approvers)) + [("recovery", p.name) for p in RECOVERY])
    first = steps[0]
    assert _ext(first)["playbook"] == "contain_1_internet_cut.yml" and first["commands"][0]["type"] == "bash"
    approval = steps[len(CONTAINMENT) + 1]
    assert approval["commands"][0]["type"] == "manual"
    assert doc["agent_definitions"][approval["agent"]]["type"] == "individual"
    # the IOS gateway is an ssh target of the router category, an area host a linux endpoint
    by_name = {t["name"]: t for t in doc["target_definitions"].values()}
    assert by_name["gw-y"]["type"] == "ssh" and by_name["y-ws11"]["type"] == "linux"
    assert by_name["gw-y"]["address"] == {"ipv4": [str(inv.hosts["gw-y"].address)]}
    isolate = steps[1]
    categories = [doc["target_definitions"][t].get("category") for t in isolate["targets"]]
    assert ["router"] in categories


def test_several_areas_are_parallel_branches_each_ending_in_its_own_end(inv: Inventory) -> None:
    doc = cacao.plan(inv, ["subsidiary-x", "hq"])
    assert cacao.schema_errors(doc) == [] and cacao.semantic_errors(doc) == []
    par = doc["workflow"][doc["workflow"][doc["workflow_start"]]["on_completion"]]
    assert par["type"] == "parallel" and len(par["next_steps"]) == 2
    ends = set()
    for first in par["next_steps"]:
        steps = _chain(doc, first)
        assert {_ext(s)["area"] for s in steps if "step_extensions" in s} in ({"subsidiary-x"}, {"hq"})
        ends.add(steps[-1]["on_completion"])
    assert len(ends) == 2 and doc["workflow"][par["on_completion"]]["type"] == "end"


def test_ids_are_stable_from_one_export_to_the_next(inv: Inventory) -> None:
    one, two = cacao.plan(inv, ["hq"]), cacao.plan(inv, ["hq"])
    assert one["id"] == two["id"] and one["workflow"].keys() == two["workflow"].keys()
    assert cacao.plan(inv, ["subsidiary-x"])["id"] != one["id"]


def test_the_schema_check_fails_a_playbook_that_breaks_the_schemas(inv: Inventory) -> None:
    doc = cacao.plan(inv, ["hq"])
    action = next(k for k, v in doc["workflow"].items() if v["type"] == "action")
    breakers: list[Any] = [lambda d: d["workflow"][action].pop("agent"),  # an action needs its agent
                   lambda d: d["workflow"][action].update(commands=[]),  # and one command at least
                   lambda d: d.update(id="playbook-1"),  # an identifier is TYPE--UUID
                   lambda d: d.update(created="2026-12-03 10:00")]  # a timestamp ends in Z
    for breaks in breakers:
        bad = copy.deepcopy(doc)
        breaks(bad)
        assert cacao.schema_errors(bad), breaks
        with pytest.raises(cacao.CacaoError):
            cacao.checked(bad)


def test_the_semantic_checks_fail_what_the_schemas_let_through(inv: Inventory) -> None:
    doc = cacao.plan(inv, ["hq"])
    wf = doc["workflow"]
    actions = [k for k, v in wf.items() if v["type"] == "action"]

    def broken(change: Any) -> list[str]:
        bad = copy.deepcopy(doc)
        change(bad, bad["workflow"])
        assert cacao.schema_errors(bad) == []  # the schemas do not see it
        return cacao.semantic_errors(bad)

    missing = "action--00000000-0000-4000-8000-000000000000"
    assert "does not exist" in broken(lambda d, w: w[actions[0]].update(on_completion=missing))[0]
    both = broken(lambda d, w: w[actions[0]].update(on_success=w[actions[0]]["on_completion"]))
    assert "on_completion with on_success" in both[0]
    loop = broken(lambda d, w: w[actions[3]].update(on_completion=actions[1]))
    assert any("loops back" in e for e in loop) and any("not reachable" in e for e in loop)
    assert "not defined" in broken(lambda d, w: w[actions[0]].update(
        targets=["linux--00000000-0000-4000-8000-000000000000"]))[0]
    assert "not defined" in broken(lambda d, w: w[actions[0]].update(
        agent="individual--00000000-0000-4000-8000-000000000000"))[0]
    assert "not a start step" in broken(lambda d, w: d.update(workflow_start=actions[0]))[0]
    assert "leads nowhere" in broken(lambda d, w: w[actions[-1]].pop("on_completion"))[0]


def _contained(tmp_path: Path, inv: Inventory) -> Journal:
    tmp_path.mkdir(exist_ok=True)
    j = Journal(tmp_path / "j.db")
    j.incidents.open(IncidentSpec(worm="lab-worm", vectors=["tcp/4445"]), "op")
    Containment(ContainRequest(inventory=LAB_INVENTORY, area="subsidiary-x", operator="op", loop=False),
                inv, j, NoDetections(), run=FakeRunner(), probe=FakeProber()).run()
    return j


def test_as_run_is_what_the_journal_holds(tmp_path: Path, inv: Inventory) -> None:
    j = _contained(tmp_path, inv)
    j.decisions.approve(1, "subsidiary-x", "alice", "ciso", "spread stopped", "2026-12-03T10:00:00+00:00",
                        "statement", "sig", "SHA256:abc", "op")
    doc = cacao.as_run(inv, j, 1)
    assert cacao.schema_errors(doc) == [] and cacao.semantic_errors(doc) == []
    steps = _chain(doc, doc["workflow"][doc["workflow_start"]]["on_completion"])
    stages = [s for s in j.stages.of(1) if not s.check_mode]
    ran = [s for s in steps if "step_extensions" in s]
    assert [(_ext(s)["stage"], _ext(s)["state"]) for s in ran] == [(s.name, s.state) for s in stages]
    assert all(TS.match(_ext(s)["started"]) and TS.match(_ext(s)["ended"]) for s in ran)
    vectors = next(s for s in ran if _ext(s)["stage"] == "vectors")
    assert set(_ext(vectors)["results"]) == set(inv.area("subsidiary-x").hosts)
    manual = [s for s in steps if s["commands"][0]["type"] == "manual"]
    assert len(manual) == 1 and doc["agent_definitions"][manual[0]["agent"]]["name"] == "alice"
    assert "lab-worm" in doc["labels"]
    assert cacao.as_run(inv, j, 1)["id"] == doc["id"]  # the same incident: the same playbook, a new version
    other = _contained(tmp_path / "other", inv)  # another journal's incident 1: another playbook
    assert cacao.as_run(inv, other, 1)["id"] != doc["id"]
    with pytest.raises(UserError, match="holds no stage"):
        cacao.as_run(inv, j, 1, ["hq"])


def test_the_command_writes_a_valid_file_and_refuses_an_unknown_area(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    done = irm("export", "cacao", "-i", str(LAB_INVENTORY), "--area", "subsidiary-x", "--out", str(out), check=True)
    assert "valid against the OASIS CACAO v2 schemas" in done.stdout
    doc = json.loads(out.read_text())
    assert cacao.schema_errors(doc) == [] and cacao.semantic_errors(doc) == []
    bad = irm("export", "cacao", "-i", str(LAB_INVENTORY), "--area", "subsidiary-q", "--out", str(tmp_path / "q.json"))
    assert bad.returncode == 2 and "unknown area 'subsidiary-q'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert not (tmp_path / "q.json").exists()
    none = irm("export", "cacao", "--as-run", "-i", str(LAB_INVENTORY), "--journal", str(tmp_path / "none.db"),
               "--out", str(tmp_path / "r.json"))
    assert none.returncode == 2 and "no journal" in none.stderr and not (tmp_path / "r.json").exists()
