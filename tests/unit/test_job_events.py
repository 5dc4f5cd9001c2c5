"""Each stage's job events, redacted, kept beside the journal (evidence for the report and forensics)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import runner
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.journal import Journal

POLICY = {"host": "gw-x", "label": "isolated", "forward": {"rules": [{"action": "drop"}]}}


def _event(kind: str, **res: Any) -> dict[str, Any]:
    return {"event": kind, "counter": 7, "created": "2026-12-03T03:00:00", "event_data": {
        "play": "Containment 2", "task": "Apply the policy", "host": "gw-x",
        "res": {"invocation": {"module_args": {"policy": POLICY}}, "irm_policies": {"gw-x": POLICY}, **res}}}


def test_an_event_keeps_where_and_what_never_arguments_extra_vars_or_output() -> None:
    ok = runner.job_event(_event("runner_on_ok", changed=True, stdout="table inet irm {...}"))
    assert ok == {"event": "runner_on_ok", "counter": 7, "created": "2026-12-03T03:00:00", "play": "Containment 2",
                  "task": "Apply the policy", "host": "gw-x", "changed": True}
    failed = runner.job_event(_event("runner_on_failed", msg="nft: \x1b[31msyntax error\x1b[0m " + "x" * 900))
    assert failed["msg"].startswith("nft: ") and "\x1b" not in failed["msg"] and len(failed["msg"]) <= 500
    kept = json.dumps([ok, failed])
    assert not any(word in kept for word in ("module_args", "irm_policies", '"forward"', "drop", "table inet"))


def test_a_vault_value_in_a_failure_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.core.inventory import load

    monkeypatch.setattr(load, "vault_values", lambda inventory: ["s3cret-pass"])
    events = [runner.job_event(_event("runner_on_failed", msg="login s3cret-pass refused"))]
    runner.redact_failures({}, "inv", events)
    assert "s3cret-pass" not in events[0]["msg"]


def test_the_journal_keeps_them_in_a_private_file_named_by_each_row(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.db") as j:
        inc = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
        rows = [j.stages.start(inc.id, "containment", area, "isolate", "gw-x", False, "op")
                for area in ("subsidiary-x", "hq")]
        events = [runner.job_event(_event("runner_on_ok", changed=True))]
        kept = j.stages.keep_job_events(rows, events)
        assert kept is not None and kept.parent == tmp_path / "journal-events"
        assert kept.name.startswith(f"stage-{min(rows)}-") and kept.suffix == ".jsonl"
        assert [json.loads(line) for line in kept.read_text().splitlines()] == events
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
        assert {s.detail.get("job_events") for s in j.stages.of(inc.id)} == {str(kept)}
        assert j.stages.keep_job_events(rows, []) is None  # nothing to keep: no file
        assert j.stages.keep_job_events(rows, events) != kept  # a second play of the same rows: a file of its own


def test_a_planted_link_or_a_shared_directory_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    with Journal(tmp_path / "journal.db") as j:
        inc = j.incidents.open(IncidentSpec(worm="W", vectors=["tcp/4445"]), "op")
        row = j.stages.start(inc.id, "containment", "hq", "isolate", "gw-hq", False, "op")
        events = [runner.job_event(_event("runner_on_ok"))]
        (tmp_path / "journal-events").symlink_to(victim)
        assert j.stages.keep_job_events([row], events) is None and list(victim.iterdir()) == []
        (tmp_path / "journal-events").unlink()
        (tmp_path / "journal-events").mkdir(mode=0o777)
        (tmp_path / "journal-events").chmod(0o777)  # writable by anyone: not irm's evidence
        assert j.stages.keep_job_events([row], events) is None
