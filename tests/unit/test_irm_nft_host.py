"""irm_nft's host code reads its arguments as AnsibleModule would, so its direct run (without AnsiballZ)
accepts and refuses exactly what the module accepts and refuses."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.conftest import module_util

host = module_util("irm_nft_host")

BASE = {"ruleset": "table inet irm\n", "fingerprint": "irm-policy-1", "state_dir": "/var/lib/irm/firewall"}


def test_defaults_and_conversions_match_ansibles_own_validator() -> None:
    given: dict[str, Any] = {**BASE, "confirm_timeout": "30", "deadman": "yes", "absent": "false",
                             "takeover_tokens": "run-a,run-b", "reach_timeout": "2.5"}
    mine = host.normalize(given)
    ansible = ArgumentSpecValidator(host.SPEC, required_if=host.REQUIRED_IF).validate(dict(given))
    assert not ansible.error_messages
    assert mine == ansible.validated_parameters
    assert mine["confirm_timeout"] == 30 and mine["deadman"] is True and mine["absent"] is False
    assert mine["takeover_tokens"] == ["run-a", "run-b"] and mine["state"] == "applied" and mine["table"] == "irm"


@pytest.mark.parametrize(("change", "message"), [
    ({"confirm_timeout": "soon"}, "argument 'confirm_timeout' is of type str and cannot be read as int"),
    ({"confirm_timeout": 2.5}, "argument 'confirm_timeout' is of type float and cannot be read as int"),
    ({"deadman": "maybe"}, "argument 'deadman' is of type str and cannot be read as bool"),
    ({"policy": ["not", "a", "mapping"]}, "argument 'policy' is of type list and cannot be read as dict"),
    ({"state": "flushed"}, "value of state must be one of: applied, confirmed, read, rehearsed, got: flushed"),
    ({"flush": True}, "Unsupported parameters for (irm_nft) module: flush"),
    ({"state_dir": None}, "missing required arguments: state_dir"),
    ({"fingerprint": None}, "state is applied but all of the following are missing: fingerprint"),
])
def test_what_the_module_refuses_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    given = {**BASE, **change}
    with pytest.raises(host.Failed) as caught:
        host.normalize({k: v for k, v in given.items() if v is not None})
    assert caught.value.result == {"failed": True, "msg": message}
    ansible = ArgumentSpecValidator(host.SPEC, required_if=host.REQUIRED_IF).validate(
        {k: v for k, v in given.items() if v is not None})
    assert ansible.error_messages  # Ansible's own validator refuses it too (in its own words)


def test_a_refused_call_reports_without_touching_anything(tmp_path: Any) -> None:
    result = host.run({**BASE, "state_dir": str(tmp_path / "fw"), "confirm_timeout": "soon"})
    assert result["failed"] and "confirm_timeout" in result["msg"]
    assert not (tmp_path / "fw").exists()


def test_a_changing_call_waits_for_another_on_the_same_host_then_gives_up(tmp_path: Any, monkeypatch: Any) -> None:
    """Two runs never interleave on one host's state directory: while another call holds its lock, a call
    that would arm a timer waits, then fails by name having done nothing (nft is never reached)."""
    import fcntl
    import os

    state = tmp_path / "firewall"
    state.mkdir()
    held = os.open(state / "irm_nft.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    monkeypatch.setattr(host, "LOCK_WAIT", 0.3)
    monkeypatch.setattr(host, "_bin", lambda name: (_ for _ in ()).throw(AssertionError("nft reached")))
    try:
        result = host.run({"state": "rehearsed", "state_dir": str(state)})
    finally:
        os.close(held)
    assert result["failed"] and "another irm_nft call has held" in result["msg"]
    assert sorted(p.name for p in state.iterdir()) == ["irm_nft.lock"]


def test_counters_enforce_nothing_and_are_read_per_comment() -> None:
    """A counter changes no fingerprint (what a table enforces), and what it saw is read by comment."""
    def rule(comment: str, counted: int | None) -> dict[str, Any]:
        expr: list[dict[str, Any]] = [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 4445}}]
        if counted is not None:
            expr.append({"counter": {"packets": counted, "bytes": counted * 60}})
        return {"rule": {"family": "inet", "table": "irm", "chain": "forward", "handle": 4, "comment": comment,
                         "expr": [*expr, {"drop": None}]}}

    def doc(*rules: dict[str, Any]) -> dict[str, Any]:
        return {"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "irm"}},
                             {"chain": {"family": "inet", "table": "irm", "name": "forward", "type": "filter",
                                        "hook": "forward", "prio": 0, "policy": "accept"}}, *rules]}

    plain, counted = doc(rule("a", None)), doc(rule("a", 7), rule("a", 5), rule("b", 0))
    fp = host.fingerprint
    assert fp(host.canonical_live(doc(rule("a", 123)))) == fp(host.canonical_live(plain))
    assert host.counters(counted) == {"a": 12, "b": 0} and host.counters(plain) == {}
