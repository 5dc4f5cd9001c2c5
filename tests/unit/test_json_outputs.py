"""--json on the commands that report: one document each, of a documented shape."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import LAB_INVENTORY
from tests.unit.test_bad_input_corpus import _main


def test_validate_json_valid_and_not(tmp_path: Path) -> None:
    code, out, err = _main(["validate", "--json", "-i", str(LAB_INVENTORY)],
                           env={"IRM_JOURNAL": str(tmp_path / "none.db")})
    doc = json.loads(out)
    assert code == 0 and doc["valid"] is True and doc["problems"] == [] and doc["areas"] == 4, err
    assert set(doc) == {"inventory", "valid", "problems", "areas", "segments", "managed_hosts", "checked_against",
                        "plans", "incident_files", "policies"}
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\n")
    code, out, _ = _main(["validate", "--json", "-i", str(LAB_INVENTORY), "--plan", str(bad)], env={"IRM_JOURNAL": ""})
    doc = json.loads(out)
    assert code == 2 and doc["valid"] is False and any("methods" in p for p in doc["problems"])


def test_map_json_names_boundaries_areas_segments_and_flows() -> None:
    code, out, err = _main(["map", "--json", "-i", str(LAB_INVENTORY)])
    doc = json.loads(out)
    assert code == 0, err
    assert doc["boundaries"]["edge"]["name"] == "edge-fw" and {g["name"] for g in doc["boundaries"]["gateways"]} >= {
        "gw-x", "gw-y"}
    x = next(a for a in doc["areas"] if a["name"] == "subsidiary-x")
    assert x["gateway"] == "gw-x" and {s["name"] for s in x["segments"]} >= {"office-1"}
    assert x["critical_flows"][0]["name"] == "erp-orders"


def test_action_list_json(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    assert _main(["action", "list", "--json", "--journal", journal])[1].strip() == "[]"
    assert _main(["incident", "open", "--worm", "W", "--vector", "tcp/1", "--journal", journal])[0] == 0
    assert _main(["action", "add", "patch the gold image", "--owner", "it-ops", "--journal", journal])[0] == 0
    code, out, err = _main(["action", "list", "--json", "--journal", journal])
    assert code == 0 and json.loads(out) == [{"id": 1, "text": "patch the gold image", "owner": "it-ops",
                                              "react": None, "due": None}], err


def test_contain_dry_run_offline_prints_every_rendered_table_and_journals_nothing(tmp_path: Path) -> None:
    """No lab here: a dry run that tried to reach a host would fail. Offline, every stage's targets get
    their table as the device would hold it (nftables for Linux boundaries, the access list for the IOS
    gateway), and the journal has no stage row."""
    from contextlib import closing

    from orchestrator.core.journal import Journal

    journal = str(tmp_path / "j.db")
    assert _main(["incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal", journal])[0] == 0
    refused = _main(["contain", "--area", "subsidiary-y", "--offline", "--journal", journal])
    assert refused[0] == 2 and "--offline goes with --dry-run" in refused[2]
    # subsidiary-z's plays run on its execution node, which does not exist here: offline never asks it
    code, out, err = _main(["contain", "--area", "subsidiary-y", "--area", "subsidiary-x", "--area", "subsidiary-z",
                            "--dry-run", "--offline", "--journal", journal])
    assert code == 0, err
    assert "--- edge-fw: internet cut: subsidiary-x, subsidiary-y" in out and "table inet irm {" in out
    assert "ip access-list extended IRM-GW-Y-" in out and " deny ip 198.18.48.0 0.0.0.255 any" in out
    for stage in ("1. internet_cut", "2. isolate", "3. vectors", "4. mobile", "5. subarea"):
        assert f"\n{stage}:" in out, stage
    assert "--- x-ws11:" in out and "tcp dport 4445" in out
    assert "no host was reached, nothing was applied or journaled" in out
    with closing(Journal.reader(Path(journal))) as j:
        assert j.stages.of(1) == [] and j.stages.postures(1) == {}


def test_incident_list_status_and_identify_json(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    assert json.loads(_main(["status", "--json", "--journal", journal])[1]) == {"incident": None}
    assert json.loads(_main(["incident", "list", "--json", "--journal", journal])[1]) == []
    assert _main(["incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal", journal])[0] == 0
    rows = json.loads(_main(["incident", "list", "--json", "--journal", journal])[1])
    assert len(rows) == 1 and {"id", "status", "opened_at", "opened_by", "worm", "vectors"} <= set(rows[0])
    assert rows[0]["worm"] == "W" and rows[0]["status"] == "open"
    code, out, err = _main(["status", "--json", "--journal", journal, "-i", str(LAB_INVENTORY)])
    doc = json.loads(out)
    assert code == 0 and "subsidiary-x" in doc["areas"], err
    log = tmp_path / "eve.json"
    log.write_text("")
    code, out, err = _main(["identify", "--json", "--journal", journal, "-i", str(LAB_INVENTORY), "--source",
                            f"suricata:{log}"])
    doc = json.loads(out)
    assert doc["incident"] == 1 and doc["sources"][0]["readable"] is True, err
