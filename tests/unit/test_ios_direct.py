"""The IOS direct path without a lab: its session talks to the lab's emulated IOS command line (the same
parser, modes, access lists, bindings and revert timer as the lab's device, on a clock the test drives),
so what is checked is what the device ends up holding and whether its timer still runs, not which calls
were made. The lab tests prove the cut by traffic (tests/integration/test_ios_area.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import ios_readback, runner
from orchestrator.core.contracts import StageVars
from orchestrator.core.errors import RunnerError
from orchestrator.core.inventory import Host, hosts_by_os
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.ios_direct import IosDirect
from orchestrator.core.posture import AreaPosture, AreaState, Policy, policies
from orchestrator.core.stream import EventStream, HostReported
from orchestrator.lab.ios_cli import Config, Device, Interface
from tests.conftest import LAB_INVENTORY

INV = load_inventory(LAB_INVENTORY)
GW = "gw-y"
AREA = "subsidiary-y"
PLAYS = frozenset({"contain_2_isolate", "contain_4_mobile"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Conn:
    """netmiko's ConnectHandler as the direct path uses it, over one emulated login."""

    def __init__(self, device: Device) -> None:
        self.session = device.session()
        self.session.execute("enable")
        self.base_prompt = device.config.hostname
        self.pending = ""
        self.alive = True
        self.closed = False
        self.commands: list[str] = []

    def is_alive(self) -> bool:
        return self.alive

    def send_command(self, command: str, auto_find_prompt: bool = True) -> str:
        self.commands.append(command)
        return self.session.execute(command)

    def config_mode(self, config_command: str) -> str:
        self.commands.append(config_command)
        out = self.session.execute(config_command)
        if self.session.mode != "config":
            raise ValueError("Failed to enter configuration mode.")
        return out

    def write_channel(self, data: str) -> None:
        for line in data.splitlines():
            self.commands.append(line)
            self.pending += f"{self.session.prompt()}{line}\n{self.session.execute(line)}"
        self.pending += self.session.prompt()

    def read_until_pattern(self, pattern: str, re_flags: int = 0, read_timeout: float = 10) -> str:
        assert re.search(pattern, self.pending, flags=re_flags), self.pending
        out, self.pending = self.pending, ""
        return out

    def disconnect(self) -> None:
        self.closed = True


class Lab:
    """One emulated gw-y with the inventory's interfaces, and the logins made to it."""

    def __init__(self) -> None:
        self.clock = Clock()
        host = INV.hosts[GW]
        interfaces = {name: Interface(name, f"198.18.{200 + i}.1 255.255.255.0")
                      for i, name in enumerate(host.ios_interfaces)}
        self.device = Device(Config(hostname=GW, interfaces=interfaces, archive_path="flash:archive"),
                             clock=self.clock, minute=60)
        self.logins: list[Conn] = []
        self.refuse_login = False

    def connect(self, host: Host) -> Conn:
        if self.refuse_login:
            from orchestrator.core.errors import UserError

            raise UserError(f"{host.address}:22: netmiko could not log in: NetmikoTimeoutException: timed out")
        conn = Conn(self.device)
        self.logins.append(conn)
        return conn


class Plays:
    """The runner for the play's other hosts: records what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, playbook: str | Path, inventory: str | Path, **kw: Any) -> runner.RunResult:
        self.calls.append({"playbook": str(playbook), **kw})
        if self.fail:
            raise RunnerError("ansible-playbook could not start")
        targets = [t for t in (kw.get("extravars") or {}).get("irm_targets", "").split(",") if t]
        return runner.RunResult(playbook=f"{playbook}.yml", status="successful", rc=0, check=bool(kw.get("check")),
                                hosts={t: runner.HostResult(host=t, ok=2, changed=1, facts={
                                    "irm_confirmed": True, "irm_live_fingerprint": "fp-" + t}) for t in targets})


def planned(posture: AreaPosture = "isolated", quarantined: frozenset[str] = frozenset()) -> dict[str, Policy]:
    states = {AREA: AreaState(posture=posture, quarantined=set(quarantined)),
              "subsidiary-x": AreaState(posture=posture)}
    return policies(INV, [], states)


def stage_vars(targets: list[str], plan: dict[str, Policy], **over: Any) -> dict[str, Any]:
    return StageVars(
        irm_targets=",".join(targets), **hosts_by_os(INV, targets),
        irm_policies={h: plan[h].model_dump(mode="json") for h in targets},
        irm_fingerprints={h: plan[h].fingerprint for h in targets}, irm_token="t-1", irm_takeover_tokens=[],
        irm_expect={}, irm_expect_policies={}, firewall_policy_confirm_timeout=60,
        irm_reach={h: [{"host": h, "via": h, "address": "198.18.0.1", "port": 22}] for h in targets},
    ).model_dump(exclude_none=True) | over


def direct(lab: Lab, plays: Plays | None = None, unanswered: list[str] | None = None) -> IosDirect:
    return IosDirect(INV, LAB_INVENTORY, PLAYS, plays or Plays(), connect=lab.connect,
                     unanswered=lambda endpoints, timeout: list(unanswered or []))


def live(lab: Lab) -> ios_readback.IosLive:
    return ios_readback.read_session(Conn(lab.device), GW)


def test_a_changing_stage_puts_the_plan_in_place_reads_it_back_confirms_and_saves() -> None:
    lab, plan = Lab(), planned()
    seen: list[HostReported] = []
    stream = EventStream()
    stream.subscribe(lambda e: seen.append(e) if isinstance(e, HostReported) else None)
    with direct(lab) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan), events=stream)
    assert result.succeeded and result.via == "ios-direct" and result.read_back == [GW]
    facts = result.hosts[GW].facts
    assert facts["irm_confirmed"] is True and facts["irm_live_fingerprint"] == plan[GW].fingerprint
    assert facts["irm_applied_at"] and result.hosts[GW].changed == 1
    now = live(lab)
    assert ios_readback.differences(INV.hosts[GW], plan[GW].model_dump(mode="json"), now) == []
    assert not now.pending  # confirmed: the timer no longer runs
    lab.clock.now += 3600
    assert not lab.device.tick()  # nothing is rolled back later
    sent = lab.logins[0].commands
    assert "configure terminal revert timer 1" in sent and sent[-3:] == [
        "configure confirm", "write memory", "show archive config rollback timer"]
    assert [(e.result.host, e.event) for e in seen] == [(GW, "runner_on_ok")]


def test_an_unchanged_stage_sends_no_configuration_and_reuses_the_held_session() -> None:
    lab, plan = Lab(), planned()
    with direct(lab) as run:
        run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
        before = len(lab.logins[0].commands)
        again = run("contain_4_mobile", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    assert again.succeeded and again.hosts[GW].changed == 0 and again.hosts[GW].facts["irm_confirmed"] is True
    assert len(lab.logins) == 1 and lab.logins[0].closed  # one login for both stages, closed at the end
    assert all(c.startswith("show ") for c in lab.logins[0].commands[before:])


def test_a_cut_management_path_leaves_the_change_unconfirmed_and_the_timer_reverts_it() -> None:
    lab, plan = Lab(), planned()
    with direct(lab, unanswered=["198.18.0.1:22 (gw-y): timed out"]) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    assert not result.succeeded and "management path does not answer" in result.hosts[GW].failures[0]
    assert result.hosts[GW].facts["irm_confirmed"] is False
    assert live(lab).pending  # not confirmed
    lab.clock.now += 61
    assert lab.device.tick() and not live(lab).acls  # the device restored what it held before


def test_a_change_already_pending_is_refused_and_nothing_is_sent() -> None:
    lab, plan = Lab(), planned()
    other = Conn(lab.device)
    other.send_command("configure terminal revert timer 5")
    other.send_command("end")
    with direct(lab) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    assert "already pending" in result.hosts[GW].failures[0]
    assert not any(c.startswith(("configure", "ip access-list")) for c in lab.logins[0].commands)
    assert lab.logins[0].closed  # a failed stage never leaves its session for the next one


def test_the_compare_and_swap_refuses_a_list_no_policy_of_this_journal_would_put_there() -> None:
    lab = Lab()
    with direct(lab) as run:  # another journal contained the area with another plan
        other = planned("internet_cut", frozenset({"office"}))
        run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], other))
    held = live(lab).acls
    plan = planned()
    expect = {GW: [Policy(host="", label="no irm rules").model_dump(mode="json"), plan[GW].model_dump(mode="json")]}
    with direct(lab) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan, irm_expect_policies=expect))
    assert "compare-and-swap refused" in result.hosts[GW].failures[0]
    assert live(lab).acls == held


def test_entries_the_device_loses_after_taking_them_are_never_confirmed() -> None:
    lab, plan = Lab(), planned()
    lab.device.lost_entries = lambda: ["eq 22"]
    with direct(lab) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    failure = result.hosts[GW].failures[0]
    assert "read back before the confirm, the device does not hold irm's plan" in failure and live(lab).pending


def test_a_refused_line_fails_the_stage_unconfirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    lab, plan = Lab(), planned()
    with direct(lab) as run:
        real = run._render.cli_lines
        monkeypatch.setattr(run._render, "cli_lines", lambda *a: [*real(*a), "ip access-list extended IRM-BOGUS",
                                                                  "10 permit bogus"])
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    assert "the device refused the configuration" in result.hosts[GW].failures[0]
    assert live(lab).pending and lab.logins[0].closed


def test_the_plays_other_hosts_run_as_the_play_at_the_same_time_and_the_results_are_one() -> None:
    lab, plan, plays = Lab(), planned(), Plays()
    with direct(lab, plays) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars(["gw-x", GW], plan))
    assert [c["extravars"]["irm_targets"] for c in plays.calls] == ["gw-x"]
    assert set(result.hosts) == {"gw-x", GW} and result.succeeded and result.read_back == [GW]
    assert result.via == "ansible-playbook+ios-direct"


def test_a_play_that_cannot_start_leaves_only_its_own_hosts_unreached() -> None:
    lab, plan = Lab(), planned()
    with direct(lab, Plays(fail=True)) as run:
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars(["gw-x", GW], plan))
    assert result.hosts["gw-x"].unreachable and "could not start" in result.hosts["gw-x"].failures[0]
    assert result.hosts[GW].facts["irm_confirmed"] is True and not live(lab).pending


@pytest.mark.parametrize("kw", [{"check": True}, {"limit": "gw-y"}, {"playbook": "contain_3_vectors"},
                                {"extravars": {"irm_targets": GW}}])
def test_what_is_not_a_plain_boundary_stage_runs_as_the_play(kw: dict[str, Any]) -> None:
    lab, plays = Lab(), Plays()
    playbook = kw.pop("playbook", "contain_2_isolate")
    extravars = kw.pop("extravars", stage_vars([GW], planned()))
    with direct(lab, plays) as run:
        run(playbook, LAB_INVENTORY, extravars=extravars, **kw)
    assert len(plays.calls) == 1 and not lab.logins


def test_a_device_that_refuses_the_login_is_unreachable_and_held_sessions_reopen() -> None:
    lab, plan = Lab(), planned()
    with direct(lab) as run:
        assert run.hold([GW, "gw-x"]) == {} and run.held == [GW]  # gw-x is not IOS: never held
        lab.logins[0].alive = False
        assert run.refresh() == {} and len(lab.logins) == 2
        lab.logins[1].alive = False
        lab.refuse_login = True
        assert "could not log in" in run.refresh()[GW]
        result = run("contain_2_isolate", LAB_INVENTORY, extravars=stage_vars([GW], plan))
    assert result.hosts[GW].unreachable == 1 and "could not log in" in result.hosts[GW].failures[0]
