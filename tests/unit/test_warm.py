"""The warm path without a lab: which stages and hosts go warm, and what a warm stage returns. The SSH
client is a stand-in script that plays a master connection and a host (it answers the host code's two
calls as the host would, and keeps what it was sent), so the wiring is checked end to end: the role's
resolved options in, the collection's sequence, the runner's collector, a ``RunResult`` the applier
reads as after a play. The lab test (tests/integration/test_watch.py) proves the cut by traffic."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import runner
from orchestrator.core.contracts import StageVars
from orchestrator.core.errors import IrmError
from orchestrator.core.posture import ChainPolicy, Policy, Rule
from orchestrator.core.stream import EventStream, HostReported
from orchestrator.core.warm import WarmHost, WarmPath

FAKE_SSH = r'''#!PYTHON
import json, os, sys, time
args = sys.argv[1:]
log = os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl")
if "-O" in args:  # control command (logged): the master answers while its pid file exists
    with open(os.path.join(os.path.dirname(sys.argv[0]), "control.log"), "a") as f:
        f.write(args[args.index("-O") + 1] + " " + args[-1] + "\n")
    sys.exit(0 if os.path.exists(os.path.join(os.path.dirname(sys.argv[0]), "master.pid")) else 255)
if "-N" in args:  # the master connection: its pid kept, its control socket made once it is up
    open(os.path.join(os.path.dirname(sys.argv[0]), "master.pid"), "w").write(str(os.getpid()))
    open(next(a.split("=", 1)[1] for a in args if a.startswith("ControlPath=")), "w").close()
    with open(os.path.join(os.path.dirname(sys.argv[0]), "control.log"), "a") as f:
        f.write("master " + args[-1] + "\n")
    time.sleep(3600)
# a session (irm_nft_sequence.session_payload): the payload's length, the host code and its first call;
# then one request per line, answered until stdin closes
stdin = sys.stdin.buffer
size = int(stdin.readline())
data = stdin.read(size).decode()
request = json.loads(json.loads(data.rsplit("stdin_session(json.loads(", 1)[1].rsplit("))", 1)[0]))
first = True
while request is not None:
    params = request["params"]
    with open(log, "a") as f:
        f.write(json.dumps({"argv": args, "params": params, "payload_bytes": len(data) if first else 0,
                            "wait": request.get("wait"), "session": os.getpid()}) + "\n")
    if os.environ.get("FAKE_UNREACHABLE"):
        print("ssh: connect to host: No route to host", file=sys.stderr)
        sys.exit(255)
    if params.get("state", "applied") == "applied":
        print(json.dumps({"changed": True, "deadman": "armed", "irm_applied_at": "2026-12-03T08:00:00+00:00",
                          "irm_live_fingerprint": "old", "irm_armed_token": params["token"]}), flush=True)
    else:
        print(json.dumps({"changed": True, "deadman": "confirmed", "irm_confirmed": True,
                          "irm_live_fingerprint": params["fingerprint"]}), flush=True)
    first = False
    line = stdin.readline()
    request = json.loads(line) if line.strip() else None
'''

WARM: dict[str, Any] = {
        "os": "linux", "confirm": "inline", "state_dir": "/var/lib/irm/firewall", "table": "irm", "deadman": True,
        "boot_unit": True, "nft_path": "/usr/sbin/nft", "python": "/usr/bin/python3", "connection": "ssh",
        "address": "gw.example", "port": 22, "user": "root", "key": "", "ssh_args": "-o ConnectTimeout=5",
        "become": False, "become_method": "sudo"}


class Resolver:
    """Plays ``playbooks/warm.yml`` (the role's resolved options per host) and records every other play."""

    def __init__(self, facts: dict[str, dict[str, Any]]) -> None:
        self.facts = facts
        self.plays: list[str] = []

    def __call__(self, playbook: str | Path, inventory: str | Path, **kw: Any) -> runner.RunResult:
        self.plays.append(str(playbook))
        hosts = {h: runner.HostResult(host=h, ok=1, facts={"irm_warm": f}) for h, f in self.facts.items()}
        return runner.RunResult(playbook=f"{playbook}.yml", status="successful", rc=0, check=bool(kw.get("check")),
                                hosts=hosts if str(playbook) == "warm" else {})


@pytest.fixture
def fake_ssh(tmp_path: Path) -> Path:
    path = tmp_path / "ssh"
    path.write_text(FAKE_SSH.replace("PYTHON", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _policy(host: str) -> dict[str, Any]:
    rule = Rule(action="drop", dst=["198.18.16.0/24"], comment="isolate")
    return Policy(host=host, label="isolated", forward=ChainPolicy(rules=[rule])).model_dump(mode="json")


def _vars(hosts: list[str], **over: Any) -> dict[str, Any]:
    return StageVars(irm_targets=",".join(hosts), irm_targets_linux=",".join(hosts), irm_targets_windows="all:!all",
                     irm_policies={h: _policy(h) for h in hosts}, irm_fingerprints={}, irm_token="run-1",
                     irm_takeover_tokens=[], irm_expect={h: ["absent"] for h in hosts}, irm_expect_policies={},
                     firewall_policy_confirm_timeout=30, irm_reach={}, **over).model_dump(exclude_none=True)


def test_only_linux_hosts_over_ssh_with_a_set_python_go_warm(tmp_path: Path, fake_ssh: Path) -> None:
    facts = {"gw-x": WARM, "gw-y": {**WARM, "os": "ios"}, "gw-z": {**WARM, "python": "auto_silent"},
             "gw-w": {**WARM, "become": True, "become_method": "su"}, "gw-v": {"os": "linux"},
             "gw-t": {**WARM, "address": "-oProxyCommand=touch /tmp/x"}}
    resolver = Resolver(facts)
    with WarmPath("inv", [*facts, "gw-u"], frozenset({"contain_2_isolate"}), resolver, ssh=str(fake_ssh)) as warm:
        refused = warm.prepare()
        assert list(warm.ready) == ["gw-x"] and resolver.plays == ["warm"]
        assert "firewall_policy_os is ios" in refused["gw-y"] and "discovered by Ansible" in refused["gw-z"]
        assert "by su" in refused["gw-w"] and "not usable" in refused["gw-v"] and "no result" in refused["gw-u"]
        assert "would read it as an option" in refused["gw-t"]  # an inventory value is never an ssh option
        pid = int((tmp_path / "master.pid").read_text())
        assert warm.refresh() == {"gw-x": True}
    with pytest.raises(ProcessLookupError):  # the master was stopped by its PID (and reaped)
        os.kill(pid, 0)
    assert not warm.dir.exists()


def test_a_stage_that_is_not_plain_runs_as_a_play(tmp_path: Path, fake_ssh: Path) -> None:
    resolver = Resolver({"gw-x": WARM, "gw-y": {**WARM, "os": "ios"}})
    with WarmPath("inv", ["gw-x", "gw-y"], frozenset({"contain_2_isolate"}), resolver, ssh=str(fake_ssh)) as warm:
        warm.prepare()
        for playbook, kw in (("contain_2_isolate", {"check": True}), ("contain_2_isolate", {"diff": True}),
                             ("contain_3_vectors", {}), ("contain_2_isolate", {"limit": "gw-x"})):
            assert warm(playbook, "inv", extravars=_vars(["gw-x"]), **kw).via == "ansible-playbook"
        assert warm("contain_2_isolate", "inv", extravars=_vars(["gw-x", "gw-y"])).via == "ansible-playbook"
        assert warm("contain_2_isolate", "other-inv", extravars=_vars(["gw-x"])).via == "ansible-playbook"
        media = _vars(["gw-x"], irm_media_targets_linux="x-ws1")
        assert warm("contain_2_isolate", "inv", extravars=media).via == "ansible-playbook"
        assert resolver.plays.count("contain_2_isolate") == 6 and resolver.plays.count("contain_3_vectors") == 1
        assert not (tmp_path / "calls.jsonl").exists() and warm.used == 0


def test_a_warm_stage_runs_the_sequence_and_returns_what_a_play_would(tmp_path: Path, fake_ssh: Path) -> None:
    resolver = Resolver({"gw-x": WARM})
    stream, seen = EventStream(), []
    stream.subscribe(lambda e: seen.append(e) if isinstance(e, HostReported) else None)
    with WarmPath("inv", ["gw-x"], frozenset({"contain_2_isolate"}), resolver, ssh=str(fake_ssh)) as warm:
        warm.prepare()
        result = warm("contain_2_isolate", "inv", extravars=_vars(["gw-x"]), events=stream)
    assert result.via == "warm" and result.succeeded and resolver.plays == ["warm"]
    hr = result.hosts["gw-x"]
    planned = Policy.model_validate(_policy("gw-x")).fingerprint
    assert hr.changed == 1 and hr.facts["irm_confirmed"] is True and hr.facts["irm_live_fingerprint"] == planned
    apply, confirm = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    # the ruleset rendered on the controller, the journal's compare-and-swap and token carried to the host
    assert "table inet irm" in apply["params"]["ruleset"] and apply["params"]["expect"] == ["absent"]
    assert apply["params"]["fingerprint"] == planned and apply["params"]["token"] == "run-1"
    assert apply["params"]["state_dir"] == "/var/lib/irm/firewall" and apply["params"]["absent"] is False
    assert confirm["params"]["state"] == "confirmed" and confirm["params"]["fingerprint"] == planned
    assert "ControlMaster=no" in apply["argv"] and apply["argv"][-2] == "gw.example"  # over the held master
    assert apply["payload_bytes"] > 10_000  # the host code goes on stdin, never on the command line
    # one remote process per host: the confirm rides the apply's session, which waits for it as long as
    # the dead-man timer would
    assert confirm["session"] == apply["session"] and confirm["payload_bytes"] == 0
    assert apply["wait"] == 30 + 5
    assert all(len(a) < 1000 for a in apply["argv"])
    assert [e.event for e in seen] == ["runner_on_ok"]
    assert [e["event"] for e in result.events][-1] == "runner_on_ok" and "res" not in result.events[-1]


def test_a_host_not_reached_is_unreachable_and_nothing_is_confirmed(tmp_path: Path, fake_ssh: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UNREACHABLE", "1")
    with WarmPath("inv", ["gw-x"], frozenset({"contain_2_isolate"}), Resolver({"gw-x": WARM}),
                  ssh=str(fake_ssh)) as warm:
        warm.prepare()
        result = warm("contain_2_isolate", "inv", extravars=_vars(["gw-x"]))
    hr = result.hosts["gw-x"]
    assert hr.unreachable == 1 and not result.succeeded and "No route to host" in hr.failures[0]
    assert "irm_confirmed" not in hr.facts


def test_area_hosts_share_one_connection_per_run_and_block_removable_storage_in_the_same_call(
        tmp_path: Path, fake_ssh: Path) -> None:
    host = {**WARM, "address": "x-ws1.example", "media_dir": "/srv/x-ws1", "media_unload": False}
    resolver = Resolver({"x-ws1": host, "gw-x": WARM})
    with WarmPath("inv", ["x-ws1", "gw-x"], frozenset({"contain_3_vectors"}), resolver, ssh=str(fake_ssh),
                  held=["gw-x"], media={"contain_3_vectors": "present"}) as warm:
        warm.prepare()
        assert not (tmp_path / "control.log").read_text().count("x-ws1.example")  # no master held for it
        result = warm("contain_3_vectors", "inv", extravars=_vars(["x-ws1"]))
        assert result.via == "warm" and result.succeeded
    apply, confirm = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert apply["params"]["media"] == {"state": "present", "dir": "/srv/x-ws1", "unload": False}
    assert "media" not in confirm["params"]  # the confirm changes the table's timer only
    assert confirm["session"] == apply["session"]  # one remote process, one connection the run keeps
    assert "ControlMaster=auto" in apply["argv"] and "ControlPersist=30" in apply["argv"]
    assert "exit x-ws1.example" in (tmp_path / "control.log").read_text().splitlines()  # closed with the run


def test_while_preparing_a_boundary_stage_runs_as_its_play_and_the_host_stage_waits(
        tmp_path: Path, fake_ssh: Path) -> None:
    import threading

    gate = threading.Event()

    class Slow(Resolver):
        def __call__(self, playbook: str | Path, inventory: str | Path, **kw: Any) -> runner.RunResult:
            if str(playbook) == "warm":
                assert gate.wait(10)
            return super().__call__(playbook, inventory, **kw)

    resolver = Slow({"gw-x": WARM, "x-ws1": {**WARM, "address": "x-ws1.example"}})
    with WarmPath("inv", [], frozenset({"contain_2_isolate", "contain_3_vectors"}), resolver, ssh=str(fake_ssh),
                  held=[]) as warm:
        warm.start(["gw-x", "x-ws1"], held=["gw-x"], wait_for=frozenset({"contain_3_vectors"}))
        assert warm("contain_2_isolate", "inv", extravars=_vars(["gw-x"])).via == "ansible-playbook"
        threading.Timer(0.3, gate.set).start()
        assert warm("contain_3_vectors", "inv", extravars=_vars(["x-ws1"])).via == "warm"
        assert sorted(warm.ready) == ["gw-x", "x-ws1"] and warm.refresh() == {"gw-x": True}
        assert warm("contain_2_isolate", "inv", extravars=_vars(["gw-x"])).via == "warm"
    assert resolver.plays == ["contain_2_isolate", "warm"]


def test_the_watcher_cuts_over_held_connections_and_starts_no_play_for_it(tmp_path: Path, fake_ssh: Path) -> None:
    from functools import partial

    from orchestrator.core.ios_direct import IosDirect
    from orchestrator.core.journal import Journal
    from orchestrator.core.stream import Notice
    from tests.fakes.runner import FakeRunner
    from tests.unit.test_ios_direct import Lab
    from tests.unit.test_watch import _det, _Source, _watcher

    j, src = Journal(tmp_path / "j.db"), _Source()
    run = FakeRunner(playbook_facts={"warm": {"irm_warm": WARM}})  # the role's resolved options, per host
    w = _watcher(tmp_path, j, src, run)
    w.warm_factory = partial(WarmPath, ssh=str(fake_ssh), unanswered=lambda endpoints, timeout: [])
    device = Lab()  # gw-y, the IOS chokepoint, is held over irm's own session (core.ios_direct)
    w.ios_factory = partial(IosDirect, connect=device.connect, unanswered=lambda endpoints, timeout: [])
    said: list[str] = []
    w.events.subscribe(lambda e: said.append(e.text) if isinstance(e, Notice) else None)
    w.start_warm()
    try:
        assert w.warm_path is not None and sorted(w.warm_path.ready) == sorted(set(w.chokepoints()) - {"gw-y"})
        assert w.ios_direct is not None and w.ios_direct.held == ["gw-y"] and len(device.logins) == 1
        assert run.playbooks() == ["warm"] and any("warm path: connections held to" in s for s in said)
        assert any("IOS direct path: sessions held to gw-y" in s for s in said)
        src.items += [_det("subsidiary-x", "subsidiary-x/office"), _det("subsidiary-x", "subsidiary-x/office", 2)]
        assert w.step() == ["subsidiary-x"]
        assert run.playbooks() == ["warm"]  # the cut started no play
        (inc,) = j.incidents.all()
        assert {s.name: s.detail["via"] for s in j.stages.of(inc.id)} == {"internet_cut": "warm", "isolate": "warm"}
        assert j.stages.postures(inc.id)["subsidiary-x"] == "isolated"
        calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
        assert [c["params"].get("state", "applied") for c in calls] == ["applied", "confirmed"] * 2
        w.keep_warm()  # every chokepoint is warm: its master or session is checked, no reach play
        assert run.playbooks() == ["warm"] and len(device.logins) == 1
    finally:
        w.stop_warm()
    assert w.warm_path is None and w.ios_direct is None and device.logins[0].closed


def test_a_master_connection_ends_with_irm_even_when_irm_is_killed(tmp_path: Path, fake_ssh: Path) -> None:
    import shutil
    import signal
    import subprocess
    import tempfile
    import time

    from tests.conftest import ROOT

    script = tmp_path / "holder.py"
    script.write_text(
        "import sys, time\n"
        "from tests.unit.test_warm import WARM, Resolver\n"
        "from orchestrator.core.warm import WarmPath\n"
        f"w = WarmPath('inv', ['gw-x'], frozenset(), Resolver({{'gw-x': WARM}}), ssh={str(fake_ssh)!r})\n"
        "w.prepare()\n"
        "print('ready', w.dir, flush=True)\n"
        "time.sleep(600)\n")
    held = ""
    holder = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None
        said, _, held = holder.stdout.readline().strip().partition(" ")
        assert said == "ready"
        master = int((tmp_path / "master.pid").read_text())
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup of its own runs
        holder.wait()

        def gone() -> bool:
            try:
                return Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        deadline = time.monotonic() + 10
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(), "the master connection outlived the irm that held it"
    finally:
        if holder.poll() is None:
            holder.kill()
        if held.startswith(tempfile.gettempdir()):  # its private directory: a SIGKILL left it behind
            shutil.rmtree(held, ignore_errors=True)


def test_the_sockets_directory_stays_short_whatever_tmpdir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                fake_ssh: Path) -> None:
    import tempfile

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    with WarmPath("inv", [], frozenset(), Resolver({}), ssh=str(fake_ssh)) as warm:
        assert len(f"{warm.dir}/{'c' * 40}") < 108  # a Unix socket's path (ssh's %C is 40 characters)
        assert not str(warm.dir).startswith(str(deep)) and (warm.dir.stat().st_mode & 0o077) == 0


def test_the_options_resolved_without_a_play_are_the_plays() -> None:
    """core.warm_resolve gives, host for host, what the role's warm play sets (the lab inventory: nftables
    boundaries, area hosts, a laptop, the IOS gateway, a host behind an execution node)."""
    from orchestrator.core import warm_resolve
    from tests.conftest import LAB_INVENTORY

    hosts = ["edge-fw", "gw-x", "x-ws11", "x-lt1", "gw-y", "hq-ws1", "z-ws11"]
    resolved = warm_resolve.resolve(str(LAB_INVENTORY), [*hosts, "nowhere"])
    played = runner.run_playbook("warm", LAB_INVENTORY, extravars={"irm_targets": ",".join(hosts)})
    for host in hosts:
        assert WarmHost.model_validate(resolved[host]) == WarmHost.model_validate(
            played.hosts[host].facts["irm_warm"]), host
    assert "not in the inventory" in resolved["nowhere"]["error"]
    with pytest.raises(IrmError, match="could not be resolved in-process"):
        warm_resolve.resolve(str(LAB_INVENTORY / "missing"), hosts)


def test_prepare_resolves_without_a_play_and_falls_back_to_it(tmp_path: Path, fake_ssh: Path) -> None:
    def broken(inventory: str, hosts: list[str]) -> dict[str, dict[str, Any]]:
        raise IrmError("the options could not be resolved in-process (exit 1: boom)")

    for resolve, plays, by in ((lambda inv, hosts: {"gw-x": WARM, "gw-u": {"error": "undefined variable"}}, [],
                                "in-process"), (broken, ["warm"], "play")):
        resolver = Resolver({"gw-x": WARM})
        with WarmPath("inv", ["gw-x", "gw-u"], frozenset({"contain_2_isolate"}), resolver, ssh=str(fake_ssh),
                      resolve=resolve) as warm:
            refused = warm.prepare()
            assert list(warm.ready) == ["gw-x"] and resolver.plays == plays and warm.resolved_by == by
            assert "could not be resolved" in refused["gw-u"]


def _session(command: list[str], wait: float = 5.0) -> Any:
    from orchestrator.core.paths import module_util
    from orchestrator.core.warm import Session

    code = module_util("irm_nft_host")
    return Session(command, module_util("irm_nft_sequence"), Path(str(code.__file__)).read_text(encoding="utf-8"),
                   sys.executable, "x-ws1", wait)


def test_a_session_runs_the_real_host_code_once_for_every_request_until_its_stdin_closes(tmp_path: Path) -> None:
    from orchestrator.core.paths import module_util

    seq = module_util("irm_nft_sequence")
    session = _session([sys.executable, "-I", "-c", seq.SESSION_RUNNER])
    media = {"dir": str(tmp_path), "unload": False}
    first = session({"state": "media", "media": {"state": "present", **media}})
    pid = session.proc.pid
    assert first == {"changed": True, "irm_media": "blocked"} and (tmp_path / "irm-usb-storage.conf").exists()
    again = session({"state": "media", "media": {"state": "absent", **media}})
    assert again == {"changed": True, "irm_media": "lifted"} and session.proc.pid == pid  # the same process
    assert session.proc.poll() is None  # it waits for the next request
    session.close()
    assert session.proc.returncode == 0 and not (tmp_path / "irm-usb-storage.conf").exists()
    refused = _session([sys.executable, "-I", "-c", seq.SESSION_RUNNER])
    bad = refused({"state": "applied"})  # the host code's own refusal comes back as the call's failure
    refused.close()
    assert bad["failed"] is True and "ruleset" in bad["msg"]


def test_a_session_left_silent_ends_on_the_host_after_its_wait(tmp_path: Path) -> None:
    from orchestrator.core.paths import module_util

    seq = module_util("irm_nft_sequence")
    session = _session([sys.executable, "-I", "-c", seq.SESSION_RUNNER], wait=0.5)
    session({"state": "media", "media": {"state": "present", "dir": str(tmp_path), "unload": False}})
    assert session.proc.wait(timeout=10) == 0  # no confirm came: the host code returned by itself
    after = session({"state": "media", "media": {"state": "absent", "dir": str(tmp_path)}})
    session.close()
    assert after["failed"] is True and (tmp_path / "irm-usb-storage.conf").exists()  # nothing ran after it


def test_a_session_whose_ssh_fails_or_falls_silent_fails_the_call_naming_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.core.warm as warm_module

    lost = _session(["sh", "-c", "echo 'ssh: connect to host x-ws1: Connection refused' >&2; exit 255"])
    failed = lost({"state": "media", "media": {"state": "present", "dir": str(tmp_path)}})
    lost.close()
    assert failed["failed"] is True and lost.lost == "ssh: connect to host x-ws1: Connection refused"
    assert "Connection refused" in failed["msg"]
    monkeypatch.setattr(warm_module, "CALL_TIMEOUT", 0.5)
    silent = _session(["sleep", "30"])
    failed = silent({"state": "media", "media": {"state": "present", "dir": str(tmp_path)}})
    silent.close()
    assert failed["failed"] is True and failed["msg"].startswith("no answer from x-ws1 within")
    assert silent.proc.returncode is not None and silent.lost == ""  # killed, not taken for unreachable


def test_resolved_options_are_kept_for_an_unchanged_static_inventory_and_only_for_its_addresses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``irm prepare`` resolves ahead is given back to a run only while nothing it came from changed,
    and only for the addresses the run's own inventory gives; never kept for an inventory whose values
    may change with nothing on disk changing."""
    import shutil

    from orchestrator.core import warm_resolve
    from tests.conftest import LAB_INVENTORY

    monkeypatch.setenv("IRM_CACHE_DIR", str(tmp_path / "cache"))
    inv = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, inv)
    hosts = ["edge-fw", "x-ws11"]
    assert warm_resolve.cached(str(inv), hosts, {}) is None
    resolved = warm_resolve.resolve(str(inv), hosts)
    addresses = {h: str(resolved[h]["address"]) for h in hosts}
    assert warm_resolve.cached(str(inv), hosts, addresses) == resolved
    assert warm_resolve.resolve(str(inv), hosts, addresses) == resolved  # no process: the kept values
    assert warm_resolve.cached(str(inv), hosts, {**addresses, "x-ws11": "198.18.99.99"}) is None
    assert warm_resolve.cached(str(inv), [*hosts, "gw-x"], addresses) is None  # not resolved yet
    files = sorted(p for p in inv.rglob("*.yml") if p.is_file())
    files[0].write_text(files[0].read_text() + "\n# changed\n")
    assert warm_resolve.cached(str(inv), hosts, addresses) is None
    warm_resolve.resolve(str(inv), hosts)
    assert warm_resolve.cached(str(inv), hosts, addresses) == resolved
    files[0].write_text(files[0].read_text() + "\nirm_probe_home: \"{{ lookup('env', 'HOME') }}\"\n")
    warm_resolve.resolve(str(inv), hosts)
    assert warm_resolve.cached(str(inv), hosts, addresses) is None


def test_options_taken_ahead_send_the_first_stage_warm_with_no_play(tmp_path: Path, fake_ssh: Path) -> None:
    resolver = Resolver({})
    with WarmPath("inv", [], frozenset({"contain_1_internet"}), resolver, ssh=str(fake_ssh)) as warm:
        warm.start(["gw-x"], held=["gw-x"], wait_for=frozenset(), defer=True, resolved={"gw-x": WARM})
        result = warm("contain_1_internet", "inv", extravars=_vars(["gw-x"]))
    assert result.via == "warm" and result.succeeded and resolver.plays == [] and warm.resolved_by == "kept"


def test_a_master_opened_by_a_preparing_thread_outlives_that_thread(tmp_path: Path, fake_ssh: Path) -> None:
    """The parent-death signal that ends a master with irm follows the thread that forked it: masters
    opened while preparing in the background must not end with the preparing thread."""
    import shutil
    import time

    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed: masters are not tied to irm's life here")
    with WarmPath("inv", [], frozenset({"contain_2_isolate"}), Resolver({}), ssh=str(fake_ssh)) as warm:
        warm.start(["gw-x"], held=["gw-x"], wait_for=frozenset(), resolved={"gw-x": WARM})
        assert warm._preparing is not None
        warm._preparing.join(timeout=15)
        assert not warm._preparing.is_alive() and warm._masters["gw-x"].poll() is None
        time.sleep(0.5)  # a parent-death signal would have landed by now
        assert warm._masters["gw-x"].poll() is None, "the master ended with the thread that opened it"
        master = warm._masters["gw-x"]
    assert master.poll() is not None  # closed with the path
