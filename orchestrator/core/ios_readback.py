"""Read an IOS boundary back over SSH with netmiko, a code path separate from the one that wrote it
(Ansible's cisco.ios over network_cli), and compare it with what irm intended.

``show access-lists`` is parsed twice: by ntc-templates' TextFSM template (the lists, their types and
sequence numbers) and line by line for each entry's exact text. Both readings must agree on which
entries exist; the comparison uses the text, because the template drops ``established`` and, after a
wildcard destination, files the destination port as a source port: a device missing ``established``
would otherwise compare equal. Bindings come from ``show running-config | include
^interface|ip access-group``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.errors import UserError

_ENTRY = re.compile(r"^\s+(\d+)\s+(.*?)(?:\s+\(\d+ matches?\))?\s*$")
_LIST = re.compile(r"^(Standard|Extended) IP access list (\S+)\s*$")


@dataclass
class IosLive:
    """What the device holds: every access list's entries (sequence, text) and every interface's bindings."""

    acls: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    bindings: dict[str, dict[str, str]] = field(default_factory=dict)  # interface -> {"in": name, "out": name}


def parse_access_lists(text: str) -> dict[str, list[tuple[int, str]]]:
    """``show access-lists`` as IOS prints it, line by line."""
    acls: dict[str, list[tuple[int, str]]] = {}
    current = None
    for line in text.splitlines():
        head = _LIST.match(line)
        if head:
            current = acls.setdefault(head.group(2), [])
            continue
        entry = _ENTRY.match(line)
        if entry and current is not None:
            current.append((int(entry.group(1)), entry.group(2)))
    return acls


def parse_bindings(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    iface = ""
    for line in text.splitlines():
        if line.startswith("interface "):
            iface = line.split(None, 1)[1].strip()
            out.setdefault(iface, {})
        m = re.match(r"^\s+ip access-group (\S+) (in|out)\s*$", line)
        if m and iface:
            out[iface][m.group(2)] = m.group(1)
    return out


def structured(text: str) -> set[tuple[str, int]]:
    """The (list, sequence) pairs ntc-templates' TextFSM template finds in ``show access-lists``."""
    from ntc_templates.parse import parse_output

    rows: list[dict[str, Any]] = parse_output(platform="cisco_ios", command="show access-lists", data=text)
    return {(str(r["name"]), int(r["sn"])) for r in rows if str(r.get("sn", "")).isdigit()}


def read(host: str, *, port: int = 22, username: str, key_file: str, timeout: float = 30) -> IosLive:
    """Log in with netmiko, enable, and read the access lists and their bindings."""
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    try:
        conn = ConnectHandler(device_type="cisco_ios", host=host, port=port, username=username, key_file=key_file,
                              use_keys=True, allow_agent=False, ssh_strict=False, system_host_keys=False,
                              conn_timeout=timeout, fast_cli=False)
    except (NetmikoAuthenticationException, NetmikoTimeoutException, OSError) as exc:
        raise UserError(f"{host}:{port}: netmiko could not log in: {exc.__class__.__name__}") from None
    try:
        conn.enable()
        acl_text = str(conn.send_command("show access-lists"))
        run_text = str(conn.send_command("show running-config | include ^interface|ip access-group"))
    finally:
        conn.disconnect()
    acls = parse_access_lists(acl_text)
    by_line = {(name, seq) for name, entries in acls.items() for seq, _ in entries}
    by_template = structured(acl_text)
    if by_line != by_template:
        raise UserError(f"{host}: the two readings of show access-lists disagree: lines {sorted(by_line - by_template)}"
                        f", template {sorted(by_template - by_line)}")
    return IosLive(acls=acls, bindings=parse_bindings(run_text))


def compare(live: IosLive, *, name: str, aces: list[str], interfaces: list[str], owned: Any) -> list[str]:
    """What differs from irm's intent, one line each (empty: the device holds exactly that). ``name`` and
    ``aces``: irm's list (no list when ``aces`` is empty); ``owned(list_name)``: irm's lists of this
    boundary, none of which may remain besides ``name``."""
    problems = []
    if aces:
        entries = live.acls.get(name)
        if entries is None:
            problems.append(f"access list {name} is missing")
        else:
            have = [text for _, text in entries]
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
