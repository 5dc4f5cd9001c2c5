"""Property, in the lab: the posture model's verdict (``checks.allows``) agrees with what the kernel's
nftables really does. For generated containment states and vectors, every policy is rendered with the
collection's one renderer (irm.response's module_utils/irm_nft_render.py, which the irm_nft action plugin
runs for every host), loaded into the host's namespace
with `nft -f`, and generated TCP connections are really attempted: a connection counts as let through
when it is accepted or refused by the target (its SYN arrived and the reply came back), blocked when
it times out."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from orchestrator.core import checks
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.posture import Policy, policies
from orchestrator.lab import traffic
from tests.conftest import module_util
from tests.property import strategies

pytestmark = pytest.mark.lab

irm_nft_render = module_util("irm_nft_render")
PORTS = [22, 4445, 8069, 80, 9]  # sshd everywhere, the lab's vulnerable service, the ERP, the web, nothing


def _render(host: str, policy: Policy) -> str:
    text: str = irm_nft_render.render(host, policy.model_dump(mode="json"), table="irm",
                                      fingerprint=policy.fingerprint, empty=policy.empty)
    return text


def _load(inv: Inventory, planned: dict[str, Policy]) -> None:
    assert inv.lab is not None
    for host in inv.managed_hosts:
        policy = planned.get(host.name, Policy(host=host.name, label="none"))
        subprocess.run(["ip", "netns", "exec", f"{inv.lab.name}-{host.name}", "nft", "-f", "-"],
                       input=_render(host.name, policy), text=True, check=True, capture_output=True)


def _candidates(inv: Inventory) -> list[tuple[str, str, int]]:
    sources = [h for h in inv.hosts.values() if h.kind in ("soc", "area")]
    targets = [h for h in inv.hosts.values() if h.kind in ("area", "internet")] + \
        [h for h in inv.managed_hosts if h.kind in ("edge", "gateway")]
    # (the SOC has no route to the hosts behind an execution node: routing, which the model leaves out)
    return [(s.name, t.name, port) for s in sources for t in targets if s.name != t.name
            and not (s.kind == "soc" and inv.manager_of(t) is not None) for port in PORTS]


@pytest.fixture(scope="module")
def inv(lab: Path) -> Inventory:
    return load_inventory(lab)


def test_the_model_agrees_with_nftables_on_generated_packets(inv: Inventory) -> None:
    candidates = _candidates(inv)

    # no shrinking: each example loads real rulesets and sends real packets; the failure names its state
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    @given(states=strategies.states(inv), vectors=strategies.vectors(), seed=st.integers(0, 2**32 - 1))
    def check(states, vectors, seed) -> None:  # type: ignore[no-untyped-def]
        planned = policies(inv, vectors, states)
        _load(inv, planned)
        disagreements: list[str] = []
        sample = random.Random(seed).sample(candidates, 40)
        probes = [traffic.Probe(source=s, target=t, address=str(inv.hosts[t].address), port=p, service=str(p))
                  for s, t, p in sample]
        for result in traffic.run_probes(inv, probes, timeout=1.0):
            p = result.probe
            real = result.outcome in ("open", "refused")
            model = checks.allows(inv, planned, p.source, p.target, p.port)
            if real != model:
                disagreements.append(f"{p.source} -> {p.target}:{p.port}: nftables {result.outcome}, model "
                                     f"{'allow' if model else 'drop'} (states {states}, vectors "
                                     f"{[str(v) for v in vectors]})")
        assert not disagreements, disagreements[:3]

    try:
        check()
    finally:
        _load(inv, {})  # no irm table left behind
