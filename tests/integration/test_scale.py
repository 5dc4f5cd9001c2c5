"""An area of 120 hosts is contained without error: extra vars travel in a file, never as one
command-line argument (Linux caps one at 128 KiB, which about 95 hosts of policies exceed). Bigger
areas are measured by bench/containment.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.make_inventory import inventory
from orchestrator.core.incident import Vector
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.posture import AreaState, policies
from tests.conftest import built_lab, irm
from tests.integration.lab_tools import live_fingerprint, matrix, probe

pytestmark = [pytest.mark.lab, pytest.mark.campaign]  # bench/lab_campaign.sh

HOSTS = 120


def test_an_area_beyond_the_argument_limit_is_contained(tmp_path: Path) -> None:
    inv_dir = tmp_path / "inv"
    inv_dir.mkdir()
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inventory(HOSTS), sort_keys=False))
    journal = tmp_path / "journal.db"
    with built_lab(inv_dir):
        inv = load_inventory(inv_dir)
        area = inv.area("bench-x")
        assert len(area.hosts) == HOSTS
        paths = [probe(inv, "erp-b", "b1-000", 22), probe(inv, "erp-b", "bl-000", 22),
                 probe(inv, "b3-010", "inet-b", 80)]
        assert set(matrix(inv, paths).values()) == {"open"}
        irm("incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal", str(journal), check=True)
        proc = irm("contain", "-i", str(inv_dir), "--area", "bench-x", "--yes", "--no-loop", "--journal",
                   str(journal), timeout=1200)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        # every host of the area enforces its planned policy, read back from each namespace
        planned = policies(inv, [Vector(protocol="tcp", port=4445)], {"bench-x": AreaState(
            posture="isolated", vectors_blocked=True, mobile_blocked=True)})
        prints = {h: live_fingerprint(inv, h) for h in area.hosts}
        assert prints == {h: planned[h].fingerprint for h in area.hosts}
        assert "absent" not in prints.values()
        assert set(matrix(inv, paths).values()) == {"timeout"}
        status = json.loads(irm("status", "-i", str(inv_dir), "--json", "--journal",
                                str(journal), check=True).stdout)
        stages = status["areas"]["bench-x"]["stages"]
        assert [(s["name"], s["state"]) for s in stages] == [
            ("internet_cut", "done"), ("isolate", "done"), ("vectors", "done"), ("mobile", "done")]
