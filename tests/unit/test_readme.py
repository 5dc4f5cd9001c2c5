"""The README's topology is what `irm lab status` prints for the shipped lab."""

from __future__ import annotations

import re

from tests.conftest import ROOT, irm


def test_readme_topology_matches_lab_status() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- topology:start -->\n```\n(.*?)```\n<!-- topology:end -->", readme, re.S)
    assert block, "README topology block missing"
    proc = irm("lab", "status", "-i", "inventories/lab")
    assert proc.returncode == 0, proc.stderr
    printed = "\n".join(line.rstrip() for line in proc.stdout.splitlines()).replace("(up)", "(down)")
    assert printed.strip() == block.group(1).strip()
