"""With the lockout check forced off, a change that cuts management is rolled back by the dead-man
timer, and SSH works again within the timer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.core import runner
from orchestrator.core.inventory.load import load_inventory
from tests.conftest import irm
from tests.integration.lab_tools import events, rulesets, stages
from tests.integration.test_containment_safety import CUT_SOC, incident

pytestmark = pytest.mark.lab


def test_dead_man_timer_restores_the_previous_ruleset(fresh_lab: Path, tmp_path: Path) -> None:
    inv = load_inventory(fresh_lab)
    journal = incident(tmp_path)
    before = rulesets(inv)
    proc = irm("contain", "--area", "subsidiary-x", "--yes", "--journal", str(journal), "--confirm-timeout", "8",
               faults={"IRM_FAULT_EXTRA_RULES": CUT_SOC, "IRM_FAULT_SKIP_LOCKOUT_CHECK": "1"}, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    # the task's name says which path ran the stage (the play, or the warm path once the options are kept)
    assert re.match(r"irm: error: stage isolate failed on gw-x: gw-x: (Apply the whole irm table for the policy, "
                    r"commit-confirmed|irm\.response\.irm_nft \(over a held SSH connection\)): management path cut, "
                    r"left unconfirmed \(the dead-man timer reverts it\): x-ws11 198\.18\.32\.11:22 \(TimeoutError\)",
                    err), err
    assert err.endswith("the dead-man timer restored the last confirmed ruleset; SSH answers again on 8 host(s) (gw-x, "
                        "x-lt1, x-lt2, x-ws11, x-ws12, x-ws13, x-ws21, x-ws22)")
    # gw-x is back to its previous ruleset, read from the host; the edge keeps its confirmed cut
    after = rulesets(inv)
    assert after["gw-x"] == before["gw-x"]
    assert after["edge-fw"] != before["edge-fw"]
    # SSH really works again through gw-x, with a new connection
    result = runner.run_playbook("reach", fresh_lab, extravars={"irm_targets": "x-ws11,x-lt2"})
    assert result.succeeded and set(result.hosts) == {"x-ws11", "x-lt2"}
    assert (Path(inv.hosts["gw-x"].state_dir) / "firewall" / "deadman.state").read_text().startswith("reverted")
    # journaled: the failed stage and the revert
    kinds = [e["kind"] for e in events(journal)]
    # then the crisis cell is told of the failure (the lab's mailbox)
    assert "lockout_reverted" in kinds and kinds[-2:] == ["containment_failed", "notified"]
    (reverted,) = events(journal, "lockout_reverted")
    assert reverted["detail"]["hosts"] == ["gw-x"]
    assert [st.state for st in stages(journal) if st.name == "isolate"] == ["failed"]
