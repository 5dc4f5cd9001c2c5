"""docs/lab.md's topology is what `irm lab status` prints for the shipped lab."""

from __future__ import annotations

import re

from tests.conftest import ROOT, irm


def test_readme_topology_matches_lab_status() -> None:
    readme = (ROOT / "docs" / "lab.md").read_text()
    block = re.search(r"<!-- topology:start -->\n```\n(.*?)```\n<!-- topology:end -->", readme, re.S)
    assert block, "docs/lab.md: topology block missing"
    proc = irm("lab", "status", "-i", "inventories/lab")
    assert proc.returncode == 0, proc.stderr
    # a lab that happens to be up adds live flags after each host; the topology itself is the same
    flags = re.compile(r" (INFECTED since \S+|no namespace|sshd down|device down|services down)")
    printed = "\n".join(flags.sub("", line).rstrip() for line in proc.stdout.splitlines())
    printed = printed.replace("(up)", "(down)")
    assert printed.strip() == block.group(1).strip()
