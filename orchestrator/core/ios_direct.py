"""The IOS direct path: a boundary stage's change on a Cisco IOS device without starting a play.

A play for one IOS device costs seconds before its first command (``ansible-playbook``, the inventory,
network_cli's persistent connection and its buffer timeouts), and irm read the device back with a second
login afterwards. ``IosDirect`` stands in for the runner (it has ``runner.run_playbook``'s signature):
for a boundary stage's play (``StageVars``) it takes the IOS devices out of the play and changes each over
one netmiko session, held open for the rest of the run (the next stage reuses it; a session that died is
opened again), in the same order and with the same checks as the role's ``irm_ios_acl`` module:

1. read the device (``ios_readback.read_session``: the lists, the bindings, each read twice, whether a
   change is pending) and refuse when a change is pending (someone else's revert timer runs) or when the
   compare-and-swap finds an irm list or binding none of this journal's policies would put there;
2. nothing to change: compare that reading with the plan (``ios_readback.differences``), done;
3. otherwise every line (``irm_ios_render.cli_lines``: the new list, the bindings, irm's old lists
   deleted) in one configuration session opened with ``configure terminal revert timer N``;
4. prove the management path with new connections from the SOC (the collection's ``irm_reach``), read
   the device again and compare it with the plan; only then ``configure confirm`` and ``write memory``,
   and read once more that nothing is pending.

Any failure leaves the change unconfirmed: the device's own timer rolls it back. The rest of the play's
hosts (Linux, Windows, hosts behind an execution node, anything in check mode) run as the play they
were, at the same time; the results come back as one ``RunResult`` through the runner's own collector,
so the applier journals and checks them as after a play. The devices it read back are named in
``RunResult.read_back``: the applier does not log in a second time to read them again.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.core import ios_readback, routing, runner
from orchestrator.core.contracts import StageVars
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.inventory import Host, Inventory
from orchestrator.core.paths import module_util
from orchestrator.core.stream import EventStream

PLAY = "irm IOS direct path"
TASK = "irm_ios_acl's sequence (over a held netmiko session)"
REACH_TIMEOUT = 5.0  # the role's reach task
LOGIN_TIMEOUT = 30.0
VIA = "ios-direct"


def minutes(confirm_timeout: int) -> int:
    """IOS revert timers count whole minutes (1 to 120): the dead-man timer rounded up (as the role)."""
    return max(1, min(120, -(-int(confirm_timeout) // 60)))


class IosDirect:
    """Held netmiko sessions to a run's IOS boundaries, and a runner that uses them for the boundary
    plays in ``playbooks`` (a play's other hosts run as the play, through ``fallback``)."""

    def __init__(self, inv: Inventory, inventory: str | Path, playbooks: frozenset[str],
                 fallback: runner.PlaybookRunner,
                 connect: Callable[[Host], Any] | None = None,
                 unanswered: Callable[[list[dict[str, Any]], float], list[str]] | None = None) -> None:
        self.inv = inv
        self.inventory = str(inventory)
        self.playbooks = playbooks
        self.fallback = fallback
        self._render = module_util("irm_ios_render")
        reach = module_util("irm_reach")
        self.unanswered = unanswered or (lambda endpoints, timeout: [
            text for _, text in reach.unanswered(endpoints, timeout)])
        self.connect = connect or _login
        self._sessions: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.used = 0  # stages whose IOS devices went direct
        self.held: list[str] = []  # devices whose sessions are opened ahead of their stages (``hold``)
        self._logins: threading.Thread | None = None

    def eligible(self, name: str) -> bool:
        host = self.inv.hosts.get(name)
        return host is not None and host.boundary_kind == "cisco_ios" and host.login is not None

    # -- sessions ------------------------------------------------------------------------------------

    def _session(self, host: Host) -> Any:
        conn = self._sessions.get(host.name)
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead transport raises anything: a new session is opened
                if conn.is_alive():
                    return conn
            self._drop(host.name)
        conn = self.connect(host)
        self._sessions[host.name] = conn
        return conn

    def hold(self, names: list[str], background: bool = False) -> dict[str, str]:
        """Log in to these devices now, in parallel, and keep their sessions for the stages to come (the
        first stage then starts without a login): device -> why it could not be opened (none: all open).
        ``background``: log in from a thread and return at once (a stage that needs a device meanwhile
        waits for its login, and logs in anew if it failed)."""
        wanted = [n for n in dict.fromkeys(names) if self.eligible(n)]
        self.held = list(dict.fromkeys([*self.held, *wanted]))
        if background:
            self._logins = threading.Thread(target=self.refresh, args=(wanted,), name="irm-ios-login", daemon=True)
            self._logins.start()
            return {}
        return self.refresh(wanted)

    def refresh(self, names: list[str] | None = None) -> dict[str, str]:
        """The held sessions checked, and opened again where they died: device -> why it is not open."""
        def one(name: str) -> tuple[str, str]:
            with self._lock_of(name):
                try:
                    self._session(self.inv.hosts[name])
                except UserError as exc:
                    return name, str(exc)
            return name, ""

        todo = self.held if names is None else names
        if not todo:
            return {}
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            return {n: why for n, why in pool.map(one, todo) if why}

    def _lock_of(self, name: str) -> threading.Lock:
        """One device's lock: its session serves one stage or one check at a time."""
        with self._lock:
            return self._locks.setdefault(name, threading.Lock())

    def _drop(self, name: str) -> None:
        conn = self._sessions.pop(name, None)
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken session: nothing more to do
                conn.disconnect()

    def close(self) -> None:
        """Log out of every held session (once the logins made in the background are over)."""
        if self._logins is not None:
            self._logins.join()
        with self._lock:
            for name in list(self._sessions):
                self._drop(name)

    def __enter__(self) -> IosDirect:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the runner ----------------------------------------------------------------------------------

    def __call__(self, playbook: str | Path, inventory: str | Path, *, extravars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, limit: str | None = None, tags: list[str] | None = None,
                 forks: int | None = None, events: EventStream | None = None,
                 node: runner.ExecutionNode | None = None) -> runner.RunResult:
        def play(vars_: dict[str, Any] | None) -> runner.RunResult:
            return self.fallback(playbook, inventory, extravars=vars_, check=check, diff=diff, limit=limit,
                                 tags=tags, forks=forks, events=events, node=node)

        plain = not (check or diff or limit or tags or node) and str(inventory) == self.inventory
        sv = None
        if plain and Path(playbook).stem in self.playbooks:
            try:
                sv = StageVars.model_validate(extravars or {})
            except ValidationError:
                sv = None
        targets = [t for t in sv.irm_targets.split(",") if t] if sv else []
        direct = [t for t in targets if self.eligible(t) and sv is not None and t in sv.irm_policies]
        if sv is None or not direct:
            return play(extravars)
        rest = [t for t in targets if t not in direct]
        if not rest:
            return self._run(str(Path(playbook).stem), direct, sv, events)

        def others() -> runner.RunResult | RunnerError:
            try:
                return play({**(extravars or {}), "irm_targets": ",".join(rest)})
            except RunnerError as exc:  # the devices' part stands: only the play's hosts did not run
                return exc

        with ThreadPoolExecutor(max_workers=1) as pool:
            part = pool.submit(others)
            mine = self._run(str(Path(playbook).stem), direct, sv, events)
            return routing.merge(str(playbook), False, [((None, rest), part.result()), ((None, direct), mine)])

    def _run(self, name: str, hosts: list[str], sv: StageVars, events: EventStream | None) -> runner.RunResult:
        read_back: list[str] = []  # the devices this run read back and compared with the plan

        def one(host: str) -> tuple[str, dict[str, Any]]:
            _, kind, res = self._host(host, sv)
            if res.pop("read_back", False):
                read_back.append(host)
            return kind, res

        result = runner.per_host(name, PLAY, TASK, hosts, one, self.inventory, events, VIA)
        result.read_back = sorted(read_back)
        self.used += 1
        return result

    def _host(self, name: str, sv: StageVars) -> tuple[str, str, dict[str, Any]]:
        """One device's change: (host, runner event kind, its result)."""
        host = self.inv.hosts[name]
        with self._lock_of(name):
            try:
                conn = self._session(host)
            except UserError as exc:
                return name, "runner_on_unreachable", {"failed": True, "msg": str(exc)}
            try:
                kind, res = self._sequence(conn, host, sv)
            except UserError as exc:
                kind, res = "runner_on_failed", {"failed": True, "msg": str(exc)}
            except Exception as exc:  # the session broke mid-sequence: unconfirmed, the timer reverts
                kind, res = "runner_on_failed", {
                    "failed": True, "msg": f"{name}: the session broke ({exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); anything sent stays unconfirmed and the "
                    "device's revert timer rolls it back"}
            if kind != "runner_on_ok":  # the next stage starts from a new session, whatever mode this one is in
                self._drop(name)
            return name, kind, res

    def _sequence(self, conn: Any, host: Host, sv: StageVars) -> tuple[str, dict[str, Any]]:
        render, name = self._render, host.name
        policy = sv.irm_policies[name]
        interfaces = list(host.ios_interfaces)
        live = ios_readback.read_session(conn, name)
        planned = render.plan(name, policy, interfaces=interfaces, live_acls=render.texts(live.acls),
                              live_bindings=live.bindings)
        fingerprint = sv.irm_fingerprints.get(name, "absent") if planned["aces"] else "absent"
        if live.pending:
            return "runner_on_failed", {
                "failed": True, "msg": f"{name}: a configuration change is already pending on the device (its revert "
                "timer runs): irm arms nothing over it; wait for it to be confirmed or rolled back by whoever made it"}
        expect = sv.irm_expect_policies.get(name, [])
        if expect and not render.known(name, expect, interfaces, render.texts(live.acls), live.bindings):
            return "runner_on_failed", {
                "failed": True, "msg": f"{name}: compare-and-swap refused: the device holds an irm access list or "
                "binding that none of the policies this journal planned for it would put there (another journal's "
                "or another SOC machine's): nothing sent; irm contain --take-over replaces it"}
        lines = render.cli_lines(planned, live.acls, live.bindings)
        if not lines:
            problems = ios_readback.differences(host, policy, live)
            if problems:
                return "runner_on_failed", {"failed": True, "read_back": True,
                                            "msg": f"{name}: read back: {'; '.join(problems)}"}
            return "runner_on_ok", {"changed": False, "commands": [], "irm_live_fingerprint": fingerprint,
                                    "irm_confirmed": True, "read_back": True}
        configure(conn, name, lines, minutes(sv.firewall_policy_confirm_timeout))
        applied = {"changed": True, "commands": lines, "irm_live_fingerprint": fingerprint, "irm_confirmed": False,
                   "irm_applied_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")}
        unanswered = self.unanswered(sv.irm_reach.get(name, []), REACH_TIMEOUT)
        if unanswered:
            return "runner_on_failed", {**applied, "failed": True, "msg": f"{name}: not confirmed, the management path "
                                        f"does not answer: {'; '.join(unanswered)} (the revert timer rolls it back)"}
        again = ios_readback.read_session(conn, name)
        problems = ios_readback.differences(host, policy, again)
        if problems or not again.pending:
            why = "; ".join(problems) or "no change pending: the revert timer already fired"
            return "runner_on_failed", {**applied, "failed": True, "read_back": True,
                                        "msg": f"{name}: read back before the confirm, the device does not hold irm's "
                                        f"plan: {why}; not confirmed, the revert timer restores the previous "
                                        "configuration"}
        answer = ios_readback.exec_command(conn, "configure confirm")
        if ios_readback.NO_PENDING in answer:
            return "runner_on_failed", {**applied, "failed": True, "msg": f"{name}: the revert timer already fired: "
                                        "the device restored its previous configuration"}
        ios_readback.exec_command(conn, "write memory")
        if ios_readback.NO_PENDING not in ios_readback.exec_command(conn, "show archive config rollback timer"):
            return "runner_on_failed", {**applied, "failed": True, "msg": f"{name}: 'configure confirm' left the "
                                        "revert timer pending"}
        return "runner_on_ok", {**applied, "irm_confirmed": True, "read_back": True}


def configure(conn: Any, host: str, lines: list[str], revert_minutes: int) -> None:
    """One configuration session under a revert timer: ``configure terminal revert timer N`` (netmiko
    checks the device entered configuration mode), every line written at once, ``end``, and the output
    read up to the exec prompt. UserError when the device refused a line (IOS starts its complaint with
    ``%``): whatever it took stays unconfirmed and the timer rolls it back. Writing the lines at once is
    safe because nothing is confirmed before the device is read back and compared with the plan."""
    conn.config_mode(config_command=f"configure terminal revert timer {revert_minutes}")
    conn.write_channel("".join(f"{line}\n" for line in [*lines, "end"]))
    prompt = re.escape(str(conn.base_prompt))
    out = str(conn.read_until_pattern(pattern=rf"^{prompt}#", re_flags=re.M, read_timeout=60))
    refused = [line.strip() for line in out.splitlines() if line.lstrip().startswith("%")]
    if refused:
        raise UserError(f"{host}: the device refused the configuration: {refused[0][:200]} (nothing is confirmed: the "
                        "revert timer rolls back whatever it took)")


def _login(host: Host) -> Any:
    """A netmiko session to ``host`` in enable mode, the host key checked as the read-back does."""
    if host.login is None:
        raise UserError(f"{host.name}: not an IOS boundary with a login (irm_boundary_kind: cisco_ios)")
    return ios_readback._connect(str(host.address), host.login.port, host.login.user, host.login.key_file,
                                 host.login.known_hosts, LOGIN_TIMEOUT, fast=True)
