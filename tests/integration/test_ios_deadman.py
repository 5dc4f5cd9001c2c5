"""With the lockout check forced off, a change of the IOS gateway gw-y that cuts management of the hosts
behind it is never confirmed: the device's revert timer rolls it back by itself, irm reads the device
until it has and checks it holds its last confirmed policy, then proves SSH works again, and reports it
as it does for an nftables boundary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import irm
from tests.integration.lab_tools import events, stages
from tests.integration.test_containment_safety import incident
from tests.integration.test_ios_area import running_config

pytestmark = [pytest.mark.lab, pytest.mark.campaign]  # bench/lab_campaign.sh

CUT_SOC_Y = json.dumps({"gw-y": {"forward": [
    {"action": "drop", "src": ["198.18.0.2/32"], "dst": ["198.18.48.0/24"],
     "comment": "test: careless rule cutting the SOC from subsidiary-y/office"}]}})


def test_the_device_rolls_an_unconfirmed_change_back_and_irm_proves_it(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    before = running_config(inv)
    proc = irm("contain", "--area", "subsidiary-y", "--yes", "--journal", str(journal), "--confirm-timeout", "30",
               faults={"IRM_FAULT_EXTRA_RULES": CUT_SOC_Y, "IRM_FAULT_SKIP_LOCKOUT_CHECK": "1"}, timeout=400)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("irm: error: stage isolate failed on gw-y: gw-y: "), err
    assert "y-ws11 198.18.48.11:22" in err and "y-ws12 198.18.48.12:22" in err, err
    assert err.endswith("the dead-man timer restored the last confirmed ruleset; SSH answers again on 4 host(s) (gw-y, "
                        "y-ws11, y-ws12, y-ws21)"), err
    assert "waiting up to 1 min for the revert timer of gw-y" in proc.stdout
    # the device itself rolled the change back: its configuration as before, nothing pending, nothing enforced
    assert running_config(inv) == before
    assert inv.lab is not None
    table = subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-gw-y", "nft", "list", "tables"],
                           capture_output=True, text=True, check=True).stdout
    assert "inet ios" not in table
    # journaled: the failed stage and the revert, the edge's cut kept
    (reverted,) = events(journal, "lockout_reverted")
    assert reverted["detail"]["hosts"] == ["gw-y"]
    assert [(st.name, st.state) for st in stages(journal)] == [("internet_cut", "done"), ("isolate", "failed")]
    assert [e["kind"] for e in events(journal)][-2:] == ["containment_failed", "notified"]  # then the cell is told
