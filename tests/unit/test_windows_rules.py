"""The Windows Firewall rendering of a host policy and the comparison of a live rule group with it."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from orchestrator.core.paths import module_util
from orchestrator.core.posture import ChainPolicy, Policy, Rule, windows_differences

win = module_util("irm_win_rules")


def _policy() -> Policy:
    return Policy(host="w", label="vectors blocked", input=ChainPolicy(rules=[
        Rule(action="accept", src=[IPv4Network("198.18.0.0/24"), IPv4Network("198.18.1.0/24")], protocol="tcp",
             dports=[5985, 5986], comment="management"),
        Rule(action="drop", protocol="tcp", dports=[4445, 4446], comment="vectors in")]))


def _live(**changes: Any) -> list[dict[str, Any]]:
    rules = [{"name": "irm in 0: management", "direction": "Inbound", "action": "Allow", "enabled": "True",
              "profile": "Domain, Private, Public", "protocol": "TCP", "local_port": ["5985-5986"],
              "remote_port": "Any", "local_address": "Any", "remote_address": ["198.18.0.0-198.18.1.255"]},
             {"name": "irm in 1: vectors in", "direction": "Inbound", "action": "Block", "enabled": "True",
              "profile": "Any", "protocol": "TCP", "local_port": ["4446", "4445"], "remote_port": ["Any"],
              "local_address": [], "remote_address": ["Any"]}]
    rules[1].update(changes)
    return rules


def test_the_same_rules_printed_another_way_are_the_plan() -> None:
    # ranges, reordered ports, "Any" as a string or a list, a profile list: all read as Windows prints them
    assert windows_differences(_policy(), _live()) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"enabled": "False"}, "rule irm in 1: vectors in: enabled false live, true planned"),
    ({"action": "Allow"}, "rule irm in 1: vectors in: action allow live, block planned"),
    ({"local_port": ["4445"]}, "rule irm in 1: vectors in: localport 4445 live, 4445-4446 planned"),
    ({"profile": "Public"}, "rule irm in 1: vectors in: profile public live, any planned"),
    ({"remote_address": ["LocalSubnet"]}, "rule irm in 1: vectors in: remoteip LocalSubnet live, any planned"),
])
def test_one_field_changed_by_hand_is_named(changes: dict[str, Any], expected: str) -> None:
    assert windows_differences(_policy(), _live(**changes)) == [expected]


def test_missing_duplicated_and_foreign_rules_are_named() -> None:
    live = _live()
    assert windows_differences(_policy(), live[:1]) == ["rule missing: irm in 1: vectors in (in block tcp 4445-4446)"]
    assert windows_differences(_policy(), [*live, live[1]]) == ["rule irm in 1: vectors in is live twice"]
    assert windows_differences(Policy(host="w", label="open"), live[:1]) == [
        "rule not planned: irm in 0: management (in allow tcp 5985-5986 198.18.0.0/23)"]


def test_render_gives_the_apply_its_arguments_and_refuses_what_windows_cannot_hold() -> None:
    out = win.render(Policy(host="w", label="x", output=ChainPolicy(rules=[
        Rule(action="accept", dst=[IPv4Network("198.18.0.2/32")], protocol="tcp", sports=[5985],
             tcp_ack=True, comment="c" * 80)])).model_dump(mode="json"))
    assert out == [{"name": "irm out 0: " + "c" * 60, "direction": "out", "action": "allow", "protocol": "tcp",
                    "localport": "5985", "remoteport": "", "localip": "", "remoteip": "198.18.0.2/32"}]
    with pytest.raises(ValueError, match="no forward chain"):
        win.render(Policy(host="w", label="x", forward=ChainPolicy(rules=[Rule(action="drop", comment="f")]))
                   .model_dump(mode="json"))
    with pytest.raises(ValueError, match="default of drop"):
        win.render(Policy(host="w", label="x", input=ChainPolicy(default="drop")).model_dump(mode="json"))


def test_compare_and_swap_knows_rules_of_the_journals_policies_only() -> None:
    empty = Policy(host="w", label="open").model_dump(mode="json")
    planned = _policy().model_dump(mode="json")
    assert win.known([], [empty])
    assert win.known(_live(), [empty, planned])
    assert win.known(_live()[:1], [empty, planned])  # a rule deleted by hand, or an apply cut short: repaired
    assert not win.known(_live(), [empty])  # rules of a policy this journal never planned
    assert not win.known(_live(local_port=["1139"]), [empty, planned])  # another journal's vector
