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
    ({"state": "flushed"}, "value of state must be one of: applied, confirmed, read, rehearsed, media, got: flushed"),
    ({"flush": True}, "Unsupported parameters for (irm_nft) module: flush"),
    ({"state_dir": None}, "state is applied but all of the following are missing: state_dir"),
    ({"state": "media"}, "state is media but all of the following are missing: media"),
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


def test_removable_storage_is_blocked_once_lifted_once_and_check_mode_touches_nothing(tmp_path: Any) -> None:
    folder = tmp_path / "modprobe.d"
    rule = folder / host.MEDIA_FILE
    spec = {"state": "present", "dir": str(folder), "unload": False}
    assert host.run({"state": "media", "media": spec}, check_mode=True) == {"changed": True, "irm_media": "blocked"}
    assert not folder.exists()
    assert host.run({"state": "media", "media": spec}) == {"changed": True, "irm_media": "blocked"}
    assert rule.read_text() == host.MEDIA_RULE and (rule.stat().st_mode & 0o777) == 0o644
    assert "install usb-storage /bin/false" in host.MEDIA_RULE.splitlines()
    assert host.run({"state": "media", "media": spec}) == {"changed": False, "irm_media": "unchanged"}
    rule.write_text("install usb-storage /bin/true\n")  # tampered: written whole again
    assert host.run({"state": "media", "media": spec})["changed"] and rule.read_text() == host.MEDIA_RULE
    lift = {**spec, "state": "absent"}
    assert host.run({"state": "media", "media": lift}) == {"changed": True, "irm_media": "lifted"}
    assert not rule.exists()
    assert host.run({"state": "media", "media": lift}) == {"changed": False, "irm_media": "unchanged"}


@pytest.mark.parametrize(("media", "message"), [
    ({"state": "gone", "dir": "/etc/modprobe.d"}, "state must be present or absent"),
    ({"state": "present", "dir": "relative"}, "dir an absolute path"),
    ({"state": "present", "folder": "/x"}, "media takes state, dir and unload"),
    ({"state": "present", "dir": "/x", "unload": "maybe"}, "media.unload"),
])
def test_a_bad_media_argument_is_refused_by_name(media: dict[str, Any], message: str) -> None:
    result = host.run({"state": "media", "media": media})
    assert result["failed"] and message in result["msg"]


def test_removable_storage_that_cannot_be_changed_fails_the_host_only_once_its_table_is_confirmed() -> None:
    sequence = module_util("irm_nft_sequence")
    calls: list[dict[str, Any]] = []

    def call(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        if args.get("state", "applied") == "applied":
            return {"changed": True, "deadman": "armed", "irm_media_error": "usb_storage is in use and stays loaded"}
        return {"changed": True, "deadman": "confirmed", "irm_confirmed": True, "irm_live_fingerprint": "fp"}

    result = sequence.apply_confirmed({"token": "t", "fingerprint": "fp"}, [], 5, call, lambda r, t: [])
    assert [c.get("state", "applied") for c in calls] == ["applied", "confirmed"]  # the table is confirmed
    assert result["failed"] and result["irm_confirmed"] is True
    assert result["msg"].startswith("removable storage: usb_storage is in use")
    assert "policy is in place" in result["msg"]
    # the table already in place (nothing armed): the same failure, nothing to confirm
    unchanged = sequence.apply_confirmed({}, [], 5, lambda a: {"changed": False, "deadman": "none",
                                                               "irm_confirmed": True, "irm_media_error": "x"},
                                         lambda r, t: [])
    assert unchanged["failed"] and unchanged["irm_confirmed"] is True


def test_the_rule_is_written_beside_a_planted_link_or_fifo_never_through_it(tmp_path: Any) -> None:
    import os

    folder = tmp_path / "modprobe.d"
    folder.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    rule = folder / host.MEDIA_FILE
    (folder / f"{host.MEDIA_FILE}.tmp").symlink_to(victim)  # the temporary name: a link to another file
    os.mkfifo(rule)  # the rule's own name: a FIFO (reading it would block the call forever)
    spec = {"state": "present", "dir": str(folder), "unload": False}
    assert host.run({"state": "media", "media": spec}) == {"changed": True, "irm_media": "blocked"}
    assert victim.read_text() == "keep\n" and rule.is_file() and rule.read_text() == host.MEDIA_RULE
    os.link(victim, folder / f"{host.MEDIA_FILE}.tmp")  # a hard link to another file at the temporary name
    rule.write_text("tampered\n")
    assert host.run({"state": "media", "media": spec})["changed"] and rule.read_text() == host.MEDIA_RULE
    assert victim.read_text() == "keep\n"
