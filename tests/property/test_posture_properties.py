"""Property: whatever the containment state of every area, the posture model keeps the operator's
management path open (SOC -> every managed host, and the replies)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from orchestrator.core import checks
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.posture import mgmt_ports, policies
from tests.conftest import LAB_INVENTORY, MINI_INVENTORY
from tests.property import strategies

INVENTORIES = {"lab": load_inventory(LAB_INVENTORY), "mini": load_inventory(MINI_INVENTORY)}


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_management_stays_open_in_every_posture_combination(name: str) -> None:
    inv = INVENTORIES[name]

    @settings(max_examples=300, deadline=None)
    @given(states=strategies.states(inv), vectors=strategies.vectors())
    def check(states, vectors) -> None:  # type: ignore[no-untyped-def]
        planned = policies(inv, vectors, states)
        assert checks.check_management(inv, planned) == []
        soc = inv.soc
        assert soc is not None
        for host in inv.managed_hosts:  # the same question through the model's general verdict, asked
            manager = inv.manager_of(host) or soc  # from where the host is managed (the SOC or its node)
            for port in mgmt_ports(host):
                assert checks.allows(inv, planned, manager.name, host.name, port), (host.name, port)

    check()
