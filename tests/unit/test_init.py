"""irm init: a starter inventory and irm.toml that irm validate accepts as they are."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_bad_input_corpus import _main


def test_the_starter_validates_and_an_existing_directory_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "irm"
    code, out, err = _main(["init", str(target)])
    assert code == 0, err
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "approvers/README.md", "inventory/group_vars/all.yml", "inventory/hosts.yml", "irm.toml"]
    code, out, err = _main(["validate"], env={"IRM_CONFIG": str(target / "irm.toml"), "IRM_JOURNAL": ""})
    assert code == 0 and "inventory: valid (1 areas, 3 segments, 8 managed hosts)" in out, err
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    code, _, err = _main(["init", str(target)])
    assert code == 2 and "exists and is not an empty directory: nothing written" in err
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
