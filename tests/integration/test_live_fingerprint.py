"""The live fingerprint is computed from what nftables enforces, never from the comment irm writes: for
generated policies, the table the renderer writes, loaded into a real namespace and listed back with
``nft -j``, has exactly the fingerprint the controller plans (``Policy.fingerprint``); and a table that
differs from the plan by one rule (a chain flushed, a rule deleted or inserted, a default changed) has
another one, although its comment still names the plan."""

from __future__ import annotations

import json
import subprocess
from ipaddress import IPv4Network
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.posture import ChainPolicy, Policy, Rule
from tests.conftest import module_util

pytestmark = pytest.mark.lab

host = module_util("irm_nft_host")
render = module_util("irm_nft_render")


@pytest.fixture()
def ns(scratch_ns: str) -> str:
    return scratch_ns


def nft(ns: str, *args: str, data: str | None = None) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", *args], input=data, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def live_fingerprint(ns: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "irm"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return "absent"
    return str(host.fingerprint(host.canonical_live(json.loads(proc.stdout))))


def load(ns: str, policy: Policy) -> None:
    nft(ns, "-f", "-", data=render.render(policy.host, policy.model_dump(mode="json"), table="irm",
                                          fingerprint=policy.fingerprint, empty=policy.empty))


# networks of the lab's range, adjacent ones included (nftables merges them inside a set)
_nets = st.builds(lambda third, size: IPv4Network(f"198.{18 + third // 256}.{third % 256}.0/24").supernet(
    new_prefix=size), st.integers(0, 511), st.sampled_from([15, 16, 23, 24]))
_hosts = st.builds(lambda n: IPv4Network(f"198.18.{n // 256}.{n % 256}/32"), st.integers(0, 1023))
_ports = st.lists(st.sampled_from([22, 80, 135, 139, 445, 1445, 3389, 5985, 5986, 8069]), max_size=4, unique=True)


@st.composite
def _rule(draw: st.DrawFn) -> Rule:
    protocol = draw(st.sampled_from([None, "tcp", "udp"]))
    nets = st.lists(st.one_of(_nets, _hosts), max_size=3).map(lambda ns: _disjoint(ns))
    return Rule(action=draw(st.sampled_from(["accept", "drop"])), src=draw(nets), dst=draw(nets),
                protocol=protocol, dports=draw(_ports) if protocol else [],
                sports=draw(_ports) if protocol and draw(st.booleans()) else [],
                established=draw(st.booleans()), comment=draw(st.text(max_size=60)))


def _disjoint(nets: list[IPv4Network]) -> list[IPv4Network]:
    """nft refuses overlapping intervals in one anonymous set: keep the networks no earlier one covers."""
    out: list[IPv4Network] = []
    for net in nets:
        if not any(net.overlaps(o) for o in out):
            out.append(net)
    return out


_chain = st.builds(ChainPolicy, rules=st.lists(_rule(), max_size=5), default=st.sampled_from(["accept", "drop"]))
_policy = st.builds(Policy, host=st.just("probe"), label=st.text(max_size=10), input=_chain, forward=_chain,
                    output=_chain)


def test_the_loaded_table_has_the_planned_fingerprint(ns: str) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(policy=_policy)
    def check(policy: Policy) -> None:
        load(ns, policy)
        assert live_fingerprint(ns) == policy.fingerprint

    check()


def _isolated() -> Policy:
    soc = [IPv4Network("198.18.0.0/24")]
    return Policy(host="gw", label="isolated", forward=ChainPolicy(rules=[
        Rule(action="accept", src=soc, protocol="tcp", dports=[22], comment="management"),
        Rule(action="accept", established=True, comment="replies"),
        Rule(action="drop", src=[IPv4Network("198.18.2.0/24")], comment="isolated: leaving"),
        Rule(action="drop", dst=[IPv4Network("198.18.2.0/24")], comment="isolated: entering")]))


@pytest.mark.parametrize(("tamper", "why"), [
    (["flush", "chain", "inet", "irm", "forward"], "a flushed chain"),
    (["delete", "rule", "inet", "irm", "forward", "handle", "{last}"], "one rule deleted"),
    (["insert", "rule", "inet", "irm", "forward", "ip", "saddr", "198.18.2.5", "accept"], "one rule inserted"),
    (["add", "rule", "inet", "irm", "forward", "counter"], "a statement irm never writes"),
    (["chain", "inet", "irm", "forward", "{{", "policy", "drop", ";", "}}"], "another default"),
    (["add", "chain", "inet", "irm", "extra"], "another chain"),
])
def test_a_table_that_differs_by_one_rule_is_drift_whatever_its_comment(ns: str, tamper: list[str], why: str) -> None:
    policy = _isolated()
    load(ns, policy)
    assert live_fingerprint(ns) == policy.fingerprint
    handles = [r["rule"]["handle"] for r in json.loads(nft(ns, "-j", "list", "chain", "inet", "irm", "forward"))[
        "nftables"] if "rule" in r]
    nft(ns, *[a.replace("{last}", str(handles[-1])).replace("{{", "{").replace("}}", "}") for a in tamper])
    assert f'comment "{policy.fingerprint}"' in nft(ns, "list", "table", "inet", "irm")  # the marker is intact
    assert live_fingerprint(ns) != policy.fingerprint, why


def test_the_same_enforcement_written_another_way_is_the_same_fingerprint(ns: str) -> None:
    """Comments, handles and the order of a set's elements carry no enforcement."""
    policy = _isolated()
    load(ns, policy)
    before = live_fingerprint(ns)
    handles = [r["rule"]["handle"] for r in json.loads(nft(ns, "-j", "list", "chain", "inet", "irm", "forward"))[
        "nftables"] if "rule" in r]
    nft(ns, "replace", "rule", "inet", "irm", "forward", "handle", str(handles[0]), "ip", "saddr", "198.18.0.0/24",
        "tcp", "dport", "22", "accept", "comment", '"renamed"')
    assert live_fingerprint(ns) == before == policy.fingerprint


def test_canonical_forms_of_a_flush_and_of_the_plan_name_the_difference() -> None:
    planned: dict[str, Any] = host.canonical_policy(_isolated().model_dump(mode="json"))
    assert [r["action"] for r in planned["chains"]["forward"]["rules"]] == ["accept", "accept", "drop", "drop"]
    assert planned["chains"]["forward"]["rules"][0] == {"action": "accept", "src": ["198.18.0.0/24"],
                                                        "protocol": "tcp", "dports": [[22, 22]]}
