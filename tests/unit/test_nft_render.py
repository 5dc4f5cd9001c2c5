"""The collection's nftables renderer: what irm's policies become, and what it refuses to write."""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any

import pytest

from orchestrator.core.posture import ChainPolicy, Policy, Rule
from tests.conftest import module_util

irm_nft_render = module_util("irm_nft_render")


def _policy() -> Policy:
    return Policy(host="pc-1", label="isolated: subsidiary-x", input=ChainPolicy(default="drop", rules=[
        Rule(action="accept", established=True, comment="replies"),
        Rule(action="accept", src=[IPv4Network("198.18.0.10/32")], protocol="tcp", dports=[22], comment="SOC ssh"),
        Rule(action="drop", src=[IPv4Network("198.18.1.0/24"), IPv4Network("198.18.2.0/24")], protocol="tcp",
             dports=[445, 4445], comment='worm "vector"'),
        Rule(action="accept", protocol="udp", comment="any udp"),
    ]))


def _render(policy: dict[str, Any], **kw: Any) -> str:
    text: str = irm_nft_render.render("pc-1", policy, table="irm", fingerprint="irm-policy-abc", **kw)
    return text


def test_a_policy_becomes_one_whole_table_transaction() -> None:
    text = _render(_policy().model_dump(mode="json"))
    lines = text.splitlines()
    assert lines[4:6] == ["table inet irm", "delete table inet irm"]  # create if missing, then rebuild whole
    assert 'comment "irm-policy-abc"' in text
    assert "type filter hook input priority filter; policy drop;" in text
    assert "type filter hook forward priority filter; policy accept;" in text
    assert "ct state established,related accept" in text
    assert "ip saddr 198.18.0.10/32 tcp dport 22 accept" in text
    # a drop on a port is counted: the boundary is a sensor of the worm's attempts
    assert ("ip saddr { 198.18.1.0/24, 198.18.2.0/24 } tcp dport { 445, 4445 } counter drop "
            "comment \"worm 'vector'\"") in text
    assert "meta l4proto udp accept" in text
    assert text.endswith("}\n")


def test_an_empty_policy_only_deletes_the_table() -> None:
    policy = Policy(host="pc-1", label="none")
    assert irm_nft_render.is_empty(policy.model_dump(mode="json")) == policy.empty is True
    text = _render(policy.model_dump(mode="json"))
    assert "table inet irm {" not in text and text.rstrip().endswith("no irm table at all.")
    assert not irm_nft_render.is_empty(_policy().model_dump(mode="json"))


def test_a_long_comment_is_cut_and_cannot_break_out_of_its_string() -> None:
    policy = _policy().model_dump(mode="json")
    policy["input"]["rules"][0]["comment"] = 'x" ; flush ruleset ; \\\n' + "y" * 300
    rule_line = next(line for line in _render(policy).splitlines() if "ct state" in line)
    comment = rule_line.split('comment "', 1)[1]
    assert comment.count('"') == 1 and comment.endswith('"') and len(comment) <= irm_nft_render.COMMENT_MAX + 1


@pytest.mark.parametrize(("where", "value", "message"), [
    (("input", "rules", 1, "src"), ["198.18.0.10/32; flush ruleset"], "input.rules[1].src: '198.18.0.10/32; flush"),
    (("input", "rules", 1, "src"), "198.18.0.10/32", "input.rules[1].src: expected a list"),
    (("input", "rules", 1, "dports"), [22, 70000], "input.rules[1].dports: '70000' is not a port"),
    (("input", "rules", 1, "dports"), ["22"], "input.rules[1].dports: '22' is not a port"),
    (("input", "rules", 1, "protocol"), "icmp", "input.rules[1].protocol: 'icmp' is not one of tcp, udp"),
    (("input", "rules", 1, "protocol"), None, "input.rules[1]: ports need a protocol"),
    (("input", "rules", 1, "action"), "reject", "input.rules[1].action: 'reject' is not one of accept, drop"),
    (("input", "rules", 1, "jump"), "elsewhere", "input.rules[1]: unknown field(s) jump"),
    (("input", "default"), "continue", "input.default: 'continue' is not one of accept, drop"),
    (("input", "rules"), "all", "input.rules: expected a list"),
    (("prerouting",), {}, "unknown field(s) prerouting"),
])
def test_a_value_that_is_not_what_nft_expects_is_refused_by_name(where: tuple[Any, ...], value: Any,
                                                                   message: str) -> None:
    policy = _policy().model_dump(mode="json")
    node = policy
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(irm_nft_render.PolicyError, match=re.escape(message)):
        _render(policy)


def test_a_table_name_must_be_plain() -> None:
    with pytest.raises(irm_nft_render.PolicyError, match="table 'irm; flush ruleset'"):
        irm_nft_render.render("pc-1", _policy().model_dump(mode="json"), table="irm; flush ruleset",
                              fingerprint="f")
