"""Read an IOS boundary back over SSH with netmiko, a code path separate from the one that wrote it
(Ansible's cisco.ios over network_cli), and compare it with what irm intended.

``show access-lists`` is parsed twice: by ntc-templates' TextFSM template (the lists, their types and
sequence numbers) and line by line for each entry's exact text. Both readings must agree on which
entries exist; the comparison uses the text, because the template drops ``established`` and, after a
wildcard destination, files the destination port as a source port: a device missing ``established``
would otherwise compare equal. Bindings are read twice too: from ``show running-config | include
^interface|ip access-group`` and by the TextFSM template of ``show ip interface``; they must agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from orchestrator.core.errors import UserError
from orchestrator.core.inventory import Host
from orchestrator.core.paths import module_util
from orchestrator.core.posture import Policy

NO_PENDING = "No Rollback Confirmed Change pending"  # IOS, when no revert timer runs


@dataclass
class IosLive:
    """What the device holds: every access list's entries (sequence, text) and every interface's bindings."""

    acls: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    bindings: dict[str, dict[str, str]] = field(default_factory=dict)  # interface -> {"in": name, "out": name}
    pending: bool = False  # a change waits for ``configure confirm`` (the revert timer runs)
    routed: set[str] = field(default_factory=set)  # interfaces with an address (show ip interface)
    matches: dict[tuple[str, int], int] = field(default_factory=dict)  # (list, sequence) -> packets it matched


def parse_access_lists(text: str) -> dict[str, list[tuple[int, str]]]:
    """``show access-lists`` as IOS prints it, line by line (the collection's parser, the one the apply uses)."""
    result: dict[str, list[tuple[int, str]]] = _renderer().parse_access_lists(text)
    return result


def parse_matches(text: str) -> dict[tuple[str, int], int]:
    """(list, sequence) -> the packets the entry matched ("(12 matches)"; none printed: 0)."""
    result: dict[tuple[str, int], int] = _renderer().parse_matches(text)
    return result


def counters(live: IosLive, name: str, rules: list[dict[str, Any]]) -> dict[str, int]:
    """Each commented rule of irm's policy -> the packets its entries in irm's list ``name`` matched (the
    access list's hit counts, the IOS counterpart of the nftables counters ``status --verify`` reads). A
    rule's entries are the renderer's; an entry an earlier rule already made is that rule's (IOS keeps the
    first), and an entry the device does not hold counts nothing."""
    render, normalize = _renderer(), _renderer().normalize
    seqs = {normalize(text): seq for seq, text in live.acls.get(name, [])}
    taken: set[str] = set()
    out: dict[str, int] = {}
    for i, rule in enumerate(rules):
        texts = [t for t in render.entries(rule, f"forward.rules[{i}]") if t not in taken]
        taken |= set(texts)
        comment = str(rule.get("comment") or "")
        if comment:
            out[comment] = out.get(comment, 0) + sum(live.matches.get((name, seqs[t]), 0) for t in texts if t in seqs)
    return out


def parse_bindings(text: str) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = _renderer().parse_bindings(text)
    return result


def structured(text: str) -> set[tuple[str, int]]:
    """The (list, sequence) pairs ntc-templates' TextFSM template finds in ``show access-lists``."""
    from ntc_templates.parse import parse_output

    rows: list[dict[str, Any]] = parse_output(platform="cisco_ios", command="show access-lists", data=text)
    return {(str(r["name"]), int(r["sn"])) for r in rows if str(r.get("sn", "")).isdigit()}


def _connect(host: str, port: int, username: str, key_file: str, known_hosts: str | None, timeout: float,
             fast: bool = False) -> Any:
    """A netmiko session in enable mode. With ``known_hosts`` the device's host key must be in it (an
    unknown or changed key refuses the login); without, any key is taken (the lab tests' own devices).
    ``fast``: netmiko's ``fast_cli`` (shorter waits between reads; every command still waits for the
    prompt), for the session that applies a stage."""
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException
    from paramiko.ssh_exception import SSHException

    keys = {"ssh_strict": True, "system_host_keys": False, "alt_host_keys": True,
            "alt_key_file": str(Path(known_hosts).expanduser())} if known_hosts else \
        {"ssh_strict": False, "system_host_keys": False}
    try:
        conn = ConnectHandler(device_type="cisco_ios", host=host, port=port, username=username,
                              key_file=str(Path(key_file).expanduser()), use_keys=True, allow_agent=False,
                              conn_timeout=timeout, fast_cli=fast, **keys)
    except (NetmikoAuthenticationException, NetmikoTimeoutException, SSHException, OSError) as exc:
        raise UserError(f"{host}:{port}: netmiko could not log in: {exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    conn.enable()
    return conn


def structured_bindings(text: str) -> dict[str, dict[str, str]]:
    """Each IP interface's bound lists as ntc-templates' TextFSM template reads ``show ip interface`` (an
    interface without an address shows none: IOS says its IP processing is disabled)."""
    from ntc_templates.parse import parse_output

    rows: list[dict[str, Any]] = parse_output(platform="cisco_ios", command="show ip interface", data=text)
    return {str(r["interface"]): {d: str(r[k]) for d, k in (("in", "inbound_acl"), ("out", "outgoing_acl")) if r.get(k)}
            for r in rows if r.get("ip_address")}


def read(host: str, *, port: int = 22, username: str, key_file: str, known_hosts: str | None = None,
         timeout: float = 30) -> IosLive:
    """Log in with netmiko, enable, and read the access lists and their bindings."""
    conn = _connect(host, port, username, key_file, known_hosts, timeout)
    try:
        return read_session(conn, host)
    finally:
        conn.disconnect()


def exec_command(conn: Any, command: str) -> str:
    """One exec-mode command's output over an open session, read up to the prompt netmiko found at login
    (not looked for again before each command: that costs a round trip of its own)."""
    return str(conn.send_command(command, auto_find_prompt=False))


def read_session(conn: Any, host: str) -> IosLive:
    """The access lists, their bindings and whether a change is pending, read over an open session (four
    commands), each reading checked against the second one (TextFSM templates); UserError when they
    disagree."""
    acl_text, run_text, interfaces_text, pending = (
        exec_command(conn, c) for c in ("show access-lists", "show running-config | include ^interface|ip access-group",
                                        "show ip interface", "show archive config rollback timer"))
    acls = parse_access_lists(acl_text)
    by_line = {(name, seq) for name, entries in acls.items() for seq, _ in entries}
    by_template = structured(acl_text)
    if by_line != by_template:
        raise UserError(f"{host}: the two readings of show access-lists disagree: lines {sorted(by_line - by_template)}"
                        f", template {sorted(by_template - by_line)}")
    bindings = parse_bindings(run_text)
    by_template_bindings = structured_bindings(interfaces_text)
    mine = {i: b for i, b in bindings.items() if b and i in by_template_bindings}
    if mine != {i: b for i, b in by_template_bindings.items() if b}:
        raise UserError(f"{host}: the running-config and show ip interface disagree on the bound lists: {mine} "
                        f"against {by_template_bindings}")
    return IosLive(acls=acls, bindings=bindings, pending=NO_PENDING not in pending,
                   routed=set(by_template_bindings), matches=parse_matches(acl_text))


def unfiltered(live: IosLive, listed: list[str]) -> list[str]:
    """Routed interfaces (an address) irm does not bind its list on: traffic through them is not filtered.
    Loopback and Null interfaces carry no transit traffic."""
    return [f"interface {i} is routed (it has an address) but not in irm_ios_interfaces: traffic through it is "
            "not filtered" for i in sorted(live.routed - set(listed))
            if not i.lower().startswith(("loopback", "null"))]


def compare(live: IosLive, *, name: str, aces: list[str], interfaces: list[str], owned: Any) -> list[str]:
    """What differs from irm's intent, one line each (empty: the device holds exactly that). ``name`` and
    ``aces``: irm's list (no list when ``aces`` is empty); ``owned(list_name)``: irm's lists of this
    boundary, none of which may remain besides ``name``. Port names IOS prints (``eq www``) compare as
    their numbers."""
    normalize = _renderer().normalize
    problems = []
    if aces:
        entries = live.acls.get(name)
        if entries is None:
            problems.append(f"access list {name} is missing")
        else:
            have = [normalize(text) for _, text in entries]
            for i, want in enumerate(aces):
                if i >= len(have):
                    problems.append(f"{name}: entry {10 * (i + 1)} '{want}' is missing")
                elif have[i] != want:
                    problems.append(f"{name}: entry {entries[i][0]} is '{have[i]}', not '{want}'")
            problems += [f"{name}: unexpected entry {seq} '{text}'" for seq, text in entries[len(aces):]]
    for iface in interfaces:
        bound = live.bindings.get(iface, {}).get("in", "")
        if aces and bound != name:
            problems.append(f"interface {iface}: {bound or 'no list'} bound in, not {name}")
        if not aces and bound and owned(bound):
            problems.append(f"interface {iface}: irm's {bound} still bound in")
    problems += [f"irm's old access list {other} is still there" for other in live.acls
                 if owned(other) and other != (name if aces else "")]
    return problems


def _renderer() -> ModuleType:
    """The collection's IOS renderer (plain Python), for the intended list: the same text the device prints."""
    return module_util("irm_ios_render")


def read_host(host: Host, timeout: float = 30) -> IosLive:
    if host.login is None:
        raise UserError(f"{host.name}: not an IOS boundary with a login (irm_boundary_kind: cisco_ios)")
    return read(str(host.address), port=host.login.port, username=host.login.user, key_file=host.login.key_file,
                known_hosts=host.login.known_hosts, timeout=timeout)


def verify(host: Host, policy: Policy) -> list[str]:
    """What the device holds that differs from ``policy`` (empty: exactly irm's intent), read with netmiko.
    A change still waiting for ``configure confirm`` is a difference: the device will roll it back."""
    return verify_counted(host, policy)[0]


def verify_counted(host: Host, policy: Policy) -> tuple[list[str], dict[str, int]]:
    """``verify``, and from the same reading the hit counts of the policy's commented rules (``counters``)."""
    data = policy.model_dump(mode="json")
    live = read_host(host)
    problems = differences(host, data, live)
    if live.pending:
        problems.append("a change is pending (the revert timer runs): not confirmed")
    render = _renderer()
    aces = render.render(host.name, data)
    counted = counters(live, render.acl_name(host.name, aces), list((data.get("forward") or {}).get("rules") or [])
                       ) if aces else {}
    return problems, counted


def differences(host: Host, policy: dict[str, Any], live: IosLive) -> list[str]:
    """What ``live`` holds that differs from the policy (a dumped ``Policy``), one line each, routed
    interfaces irm does not filter included; whether a change is pending is the caller's to judge."""
    render = _renderer()
    aces = render.render(host.name, policy)
    name = render.acl_name(host.name, aces) if aces else ""
    problems = compare(live, name=name, aces=aces, interfaces=list(host.ios_interfaces),
                       owned=lambda n: render.owned(n, host.name))
    return problems + unfiltered(live, list(host.ios_interfaces))


def wait_settled(host: Host, seconds: float, poll: float = 2.0) -> bool:
    """Wait until no change is pending on the device (its revert timer fired, or someone confirmed); False
    when one is still pending after ``seconds`` or the device cannot be read."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if not read_host(host, timeout=10).pending:
                return True
        except UserError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def rehearse(host: Host, timeout: float = 30) -> None:
    """The commit-confirmed round trip with no change (irm prepare): open a revert timer, leave
    configuration mode without changing anything, see the timer pending, confirm, and see nothing
    pending. Refused while a change is already pending (someone else's). UserError naming the step."""
    if host.login is None:
        raise UserError(f"{host.name}: not an IOS boundary with a login (irm_boundary_kind: cisco_ios)")
    conn = _connect(str(host.address), host.login.port, host.login.user, host.login.key_file,
                    host.login.known_hosts, timeout)
    try:
        def pending() -> bool:
            return NO_PENDING not in str(
                conn.send_command("show archive config rollback timer"))

        if pending():
            raise UserError(f"{host.name}: a change is pending (its revert timer runs): no rehearsal now")
        conn.send_command_timing("configure terminal revert timer 5")
        conn.send_command_timing("end")
        if not pending():
            raise UserError(f"{host.name}: 'configure terminal revert timer' left no timer pending: the device "
                            "cannot roll a change back by itself")
        conn.send_command_timing("configure confirm")
        if pending():
            raise UserError(f"{host.name}: 'configure confirm' left the revert timer pending")
    finally:
        conn.disconnect()


def show(host: Host, command: str, timeout: float = 30) -> str:
    """One exec-mode command's output, read with irm's SSH client (the host key checked)."""
    if host.login is None:
        raise UserError(f"{host.name}: not an IOS boundary with a login (irm_boundary_kind: cisco_ios)")
    conn = _connect(str(host.address), host.login.port, host.login.user, host.login.key_file,
                    host.login.known_hosts, timeout)
    try:
        return str(conn.send_command(command))
    finally:
        conn.disconnect()
