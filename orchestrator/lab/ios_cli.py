"""An emulated Cisco IOS command line for the lab: the subset irm and Ansible's cisco.ios use, stateful.

This is an emulator, not IOS. It keeps a running-config (hostname, archive, extended IP access lists
with numbered entries, interfaces with their ``ip access-group``) and answers the commands that
cisco.ios's cliconf, terminal and resource modules and netmiko send: ``enable``, ``terminal length``,
``show version``, ``show running-config`` (with ``| section``, ``| include``, ``| exclude``,
``| begin``), ``show access-lists``, ``configure terminal`` (also ``revert timer N``), ``configure
confirm``, ``configure revert now``, ``show archive``, ``show archive config rollback timer``, the
configuration modes for access lists and interfaces, and their ``no`` forms. Keywords may be
abbreviated to any unique prefix, as on IOS. Anything else is answered as IOS answers it: ``% Invalid
input detected at '^' marker.`` under the offending word.

A revert timer (``configure terminal revert timer N``, N minutes) snapshots the configuration; unless
``configure confirm`` comes first, the device goes back to the snapshot when it expires (the caller
drives the clock with ``Device.tick``; the lab's server ticks it every second). ``minute`` scales the
timer for the lab's tests (60 seconds by default, as on IOS).

Pure Python, no I/O: the SSH server (``ios_server``) feeds it lines and writes its answers; a callback
is told of every configuration change, so the lab can enforce the access lists on real traffic.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
NO_PENDING = "%No Rollback Confirmed Change pending"
PORT_NAMES = {"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "www": 80, "pop3": 110,
               "sunrpc": 111, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138, "netbios-ss": 139,
               "snmp": 161, "bgp": 179, "https": 443, "syslog": 514, "tftp": 69}
# The well-known ports IOS prints by name in an access list, whatever was typed (``eq 80`` shows ``eq www``).
SHOWN_NAMES = {"tcp": {21: "ftp", 23: "telnet", 25: "smtp", 53: "domain", 80: "www", 110: "pop3", 111: "sunrpc",
                       139: "netbios-ss", 179: "bgp"},
               "udp": {53: "domain", 69: "tftp", 123: "ntp", 137: "netbios-ns", 138: "netbios-dgm", 161: "snmp",
                       514: "syslog"}}


class CliError(Exception):
    """A line IOS refuses: ``word`` is the index of the offending word (the caret goes under it)."""

    def __init__(self, message: str, word: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.word = word


@dataclass
class AceEntry:
    """One access-control entry, kept as IOS prints it (``permit tcp any host 198.18.0.2 eq 22``)."""

    seq: int
    text: str


@dataclass
class Interface:
    name: str
    address: str = ""  # "A.B.C.D M.M.M.M"
    description: str = ""
    shutdown: bool = False
    acl_in: str = ""
    acl_out: str = ""

    def lines(self) -> list[str]:
        out = [f"interface {self.name}"]
        if self.description:
            out.append(f" description {self.description}")
        out.append(f" ip address {self.address}" if self.address else " no ip address")
        if self.acl_in:
            out.append(f" ip access-group {self.acl_in} in")
        if self.acl_out:
            out.append(f" ip access-group {self.acl_out} out")
        if self.shutdown:
            out.append(" shutdown")
        return out


@dataclass
class Config:
    hostname: str
    interfaces: dict[str, Interface] = field(default_factory=dict)
    acls: dict[str, list[AceEntry]] = field(default_factory=dict)
    archive_path: str = ""
    archive_maximum: int = 0

    def running(self) -> str:
        lines = ["Building configuration...", "", "Current configuration : 0 bytes", "!", "version 15.9",
                 f"hostname {self.hostname}", "!"]
        if self.archive_path:
            lines += ["archive", f" path {self.archive_path}"]
            if self.archive_maximum:
                lines.append(f" maximum {self.archive_maximum}")
            lines.append("!")
        for iface in self.interfaces.values():
            lines += [*iface.lines(), "!"]
        for name, entries in self.acls.items():
            lines.append(f"ip access-list extended {name}")
            lines += [f" {e.seq} {e.text}" for e in entries]
            lines.append("!")
        lines += ["end", ""]
        body = "\n".join(lines)
        return body.replace("Current configuration : 0 bytes", f"Current configuration : {len(body)} bytes")

    def access_lists(self, name: str = "", hits: dict[tuple[str, int], int] | None = None) -> str:
        """``show access-lists [NAME]``; ``hits``: the packets each (list, sequence) entry matched, printed
        as IOS does ("(12 matches)", nothing for an entry that matched none)."""
        out = []
        for acl, entries in self.acls.items():
            if name and acl != name:
                continue
            out.append(f"Extended IP access list {acl}")
            for e in entries:
                n = (hits or {}).get((acl, e.seq), 0)
                out.append(f"    {e.seq} {e.text}" + (f" ({n} match{'es' if n > 1 else ''})" if n else ""))
        return "\n".join(out) + ("\n" if out else "")


# -- access-control entries -------------------------------------------------------------------------

def _address(words: list[str], i: int) -> tuple[str, int]:
    """``any`` | ``host A`` | ``A WILDCARD`` at words[i]: (text, next index)."""
    if i >= len(words):
        raise CliError(INCOMPLETE)
    w = words[i]
    if w == "any":
        return "any", i + 1
    if w == "host":
        if i + 1 >= len(words):
            raise CliError(INCOMPLETE)
        _ip(words[i + 1], i + 1)
        return f"host {words[i + 1]}", i + 2
    _ip(w, i)
    if i + 1 >= len(words):
        raise CliError(INCOMPLETE)
    _ip(words[i + 1], i + 1)
    return f"{w} {words[i + 1]}", i + 2


def _ip(text: str, word: int) -> None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise CliError(INVALID, word) from None


def _port(text: str, word: int, proto: str) -> str:
    """A port as IOS prints it: its name when IOS has one for the protocol, else its number."""
    if text.isdigit() and 0 <= int(text) <= 65535:
        return SHOWN_NAMES.get(proto, {}).get(int(text), str(int(text)))
    if text in PORT_NAMES:
        return SHOWN_NAMES.get(proto, {}).get(PORT_NAMES[text], str(PORT_NAMES[text]))
    raise CliError(INVALID, word)


def _ports(words: list[str], i: int, proto: str) -> tuple[str, int]:
    """An optional port match at words[i]: ``eq P [P ...]``, ``neq``, ``gt``, ``lt`` or ``range A B``."""
    if i >= len(words) or words[i] not in ("eq", "neq", "gt", "lt", "range"):
        return "", i
    op = words[i]
    if op == "range":
        if i + 2 >= len(words):
            raise CliError(INCOMPLETE)
        return f"range {_port(words[i + 1], i + 1, proto)} {_port(words[i + 2], i + 2, proto)}", i + 3
    j, ports = i + 1, []
    while j < len(words) and (words[j].isdigit() or words[j] in PORT_NAMES):
        ports.append(_port(words[j], j, proto))
        j += 1
        if op != "eq":
            break
    if not ports:
        raise CliError(INCOMPLETE if j >= len(words) else INVALID, j)
    return f"{op} {' '.join(ports)}", j


@dataclass(frozen=True)
class Ace:
    """One permit or deny entry, each part as IOS prints it (``host 198.18.0.2``, ``eq 22 80``, ``""``)."""

    action: str
    protocol: str
    src: str
    sport: str
    dst: str
    dport: str
    flags: tuple[str, ...]

    @property
    def text(self) -> str:
        parts = (self.action, self.protocol, self.src, self.sport, self.dst, self.dport, *self.flags)
        return " ".join(p for p in parts if p)


def parse_entry(words: list[str], offset: int = 0) -> Ace | None:
    """A permit or deny entry's parts (``None`` for a remark), or ``CliError`` naming the offending word
    (``offset``: the index of words[0] in the whole line)."""
    try:
        if not words:
            raise CliError(INCOMPLETE)
        action = words[0]
        if action == "remark":
            return None
        if action not in ("permit", "deny"):
            raise CliError(INVALID, 0)
        if len(words) < 2:
            raise CliError(INCOMPLETE)
        proto = words[1]
        if proto not in ("ip", "tcp", "udp", "icmp"):
            raise CliError(INVALID, 1)
        src, i = _address(words, 2)
        sport, i = _ports(words, i, proto) if proto in ("tcp", "udp") else ("", i)
        dst, i = _address(words, i)
        dport, i = _ports(words, i, proto) if proto in ("tcp", "udp") else ("", i)
        flags: list[str] = []
        while i < len(words):
            if words[i] == "established" and proto == "tcp" and "established" not in flags:
                flags.append("established")
            elif words[i] == "log" and "log" not in flags:
                flags.append("log")
            else:
                raise CliError(INVALID, i)
            i += 1
        return Ace(action, proto, src, sport, dst, dport, tuple(flags))
    except CliError as exc:
        if exc.word is not None:
            exc.word += offset
        raise


def parse_ace(words: list[str], offset: int = 0) -> str:
    """The entry's canonical text (a remark as given), or ``CliError`` naming the offending word."""
    ace = parse_entry(words, offset)
    return " ".join(words) if ace is None else ace.text


# -- the device -------------------------------------------------------------------------------------

class Device:
    """One emulated router: its configuration, its revert timer and what it tells the lab."""

    def __init__(self, config: Config, *, minute: float = 60.0,
                 on_change: Callable[[Config], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 version: str = "15.9(3)M9", on_save: Callable[[Config], None] | None = None,
                 neighbours: Callable[[], list[tuple[str, str, str]]] | None = None,
                 lost_entries: Callable[[], list[str]] | None = None,
                 hits: Callable[[], dict[tuple[str, int], int]] | None = None) -> None:
        self.config = config
        # ``show access-lists``' match counts: the packets each entry matched (the lab's server reads the
        # counters of the namespace's ``inet ios`` table; ``ios_enforce.hits``)
        self.hits = hits or (lambda: {})
        # fault injection for the lab's tests: access-list entries containing one of these texts are
        # accepted and then lost, as if another session removed them right after they were written
        self.lost_entries = lost_entries or (lambda: [])
        # ``show arp``: (address, MAC, IOS interface) of each neighbour the device knows (the lab's server
        # reads its namespace's kernel table); the device's own addresses are added by the command
        self.neighbours = neighbours or (lambda: [])
        self.on_save = on_save  # ``write memory``: the startup-config, what the device boots on
        self.minute = minute
        self.on_change = on_change
        self.clock = clock
        self.version = version
        self.lock = threading.RLock()
        self.revert_at: float | None = None
        self.revert_minutes = 0
        self.snapshot: Config | None = None
        self.reverted = 0  # how many times the timer restored a snapshot

    def changed(self) -> None:
        if self.on_change:
            self.on_change(copy.deepcopy(self.config))

    def tick(self) -> bool:
        """Restore the snapshot if the revert timer expired; True when it did."""
        with self.lock:
            if self.revert_at is None or self.clock() < self.revert_at:
                return False
            assert self.snapshot is not None
            self.config, self.snapshot, self.revert_at = self.snapshot, None, None
            self.reverted += 1
        self.changed()
        return True

    def session(self) -> Session:
        return Session(self)


@dataclass
class _Node:
    """A command's words, each matched by a unique prefix among its siblings, as IOS's parser does."""

    children: dict[str, _Node] = field(default_factory=dict)
    handler: str = ""  # the Session method that runs it; the rest of the line is its arguments


def _tree(commands: dict[str, str]) -> _Node:
    root = _Node()
    for words, handler in commands.items():
        node = root
        for w in words.split():
            node = node.children.setdefault(w, _Node())
        node.handler = handler
    return root


_EXEC = {"enable": "enable", "disable": "disable", "exit": "exit", "logout": "exit", "quit": "exit",
         "terminal length": "terminal", "terminal width": "terminal", "terminal no": "terminal",
         "show version": "show_version", "show privilege": "show_privilege", "show clock": "show_clock"}
_ENABLE = {**_EXEC, "show running-config": "show_running", "show access-lists": "show_acls",
           "show ip access-lists": "show_acls", "show ip interface": "show_ip_interface",
           "show arp": "show_arp", "show ip arp": "show_arp",
           "show archive": "show_archive",
           "show archive config rollback timer": "show_rollback_timer", "configure terminal": "configure",
           "configure confirm": "confirm", "configure revert now": "revert_now",
           "copy running-config startup-config": "write", "write memory": "write"}
_CONFIG = {"hostname": "hostname", "ip access-list extended": "acl", "no ip access-list extended": "no_acl",
           "interface": "interface", "archive": "archive", "end": "end", "exit": "end", "do": "do"}
_NACL = {"permit": "ace", "deny": "ace", "remark": "ace", "no": "no_ace", "exit": "up", "end": "end",
         "do": "do"}
_IF = {"ip access-group": "access_group", "no ip access-group": "no_access_group", "ip address": "ip_address",
       "description": "description", "shutdown": "shutdown", "no shutdown": "no_shutdown", "exit": "up",
       "end": "end", "do": "do"}
_ARCHIVE = {"path": "archive_path", "maximum": "archive_maximum", "exit": "up", "end": "end", "do": "do"}
_TREES = {"exec": _tree(_EXEC), "enable": _tree(_ENABLE), "config": _tree(_CONFIG),
          "config-ext-nacl": _tree(_NACL), "config-if": _tree(_IF), "config-archive": _tree(_ARCHIVE)}
_SUBMODES = ("config-ext-nacl", "config-if", "config-archive")
_FILTERS = ("include", "exclude", "section", "begin")


class Session:
    """One login's command line: its mode and what it is editing."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.mode = "exec"
        self.acl = ""
        self.iface = ""
        self.closed = False
        self._words: list[str] = []

    def prompt(self) -> str:
        host = self.device.config.hostname
        if self.mode == "exec":
            return f"{host}>"
        if self.mode == "enable":
            return f"{host}#"
        return f"{host}({self.mode})#" if self.mode != "config" else f"{host}(config)#"

    def execute(self, line: str) -> str:
        """The device's answer to one line (without the next prompt)."""
        self.device.tick()
        prompt = self.prompt()
        text = line.strip()
        if not text or text.startswith("!"):
            return ""
        try:
            with self.device.lock:
                return self._execute(text)
        except CliError as exc:
            if exc.word is None:
                return exc.message + "\n"
            column = len(prompt) + _word_column(line, exc.word)
            return " " * column + "^\n" + exc.message + "\n"

    def _execute(self, text: str) -> str:
        command, _, pipe = text.partition("|")
        words = command.split()
        if self.mode == "config-ext-nacl" and words and words[0].isdigit() and not pipe:
            return self._numbered_ace(words)
        self._words = words
        try:
            handler, args, used = self._match(words)
            if pipe and handler not in ("show_running", "show_acls", "show_version", "show_ip_interface"):
                raise CliError(INVALID, len(words))
            out: str = getattr(self, "_" + handler)(args, used)
        except CliError as exc:
            # As IOS does, a sub-mode hands a line it cannot take to global configuration mode (``interface
            # Gi0/2`` straight after ``ip access-group ...`` under another interface), which it then enters.
            if self.mode not in _SUBMODES or pipe:
                raise
            try:
                handler, args, used = self._match(words, "config")
            except CliError:
                raise exc from None
            self.mode = "config"
            out = getattr(self, "_" + handler)(args, used)
        return _filter(out, pipe, len(words)) if pipe else out

    def _match(self, words: list[str], mode: str = "") -> tuple[str, list[str], int]:
        node = _TREES[mode or self.mode]
        handler, used = "", 0
        for i, w in enumerate(words):
            candidates = [k for k in node.children if k.startswith(w.lower())]
            exact = w.lower() in node.children
            if not candidates:
                if node.handler:
                    break
                raise CliError(INVALID, i)
            if len(candidates) > 1 and not exact:
                raise CliError(f'% Ambiguous command:  "{" ".join(words)}"')
            node = node.children[w.lower() if exact else candidates[0]]
            used = i + 1
            handler = node.handler
        if not node.handler:
            if not words:
                return "", [], 0
            raise CliError(INCOMPLETE)
        return node.handler or handler, words[used:], used

    # -- exec ------------------------------------------------------------------------------------

    def _enable(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        self.mode = "enable" if self.mode == "exec" else self.mode
        return ""

    def _disable(self, args: list[str], used: int) -> str:
        self.mode = "exec"
        return ""

    def _exit(self, args: list[str], used: int) -> str:
        self.closed = True
        return ""

    def _terminal(self, args: list[str], used: int) -> str:
        if args and not args[0].isdigit():
            raise CliError(INVALID, used)
        return ""

    def _show_version(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        host = self.device.config.hostname
        return (f"Cisco IOS Software, IOSv Software (VIOS-ADVENTERPRISEK9-M), Version {self.device.version}, "
                "RELEASE SOFTWARE (fc1)\nTechnical Support: http://www.cisco.com/techsupport\n"
                "ROM: Bootstrap program is IOSv\n\n"
                f"{host} uptime is 1 hour, 0 minutes\nSystem image file is \"flash0:/vios-adventerprisek9-m\"\n"
                "This is the irm lab's emulated IOS device (orchestrator/lab/ios_cli.py), not IOS.\n\n"
                "cisco IOSv (revision 1.0) with 460033K/62464K bytes of memory.\n"
                "Processor board ID 9A1B2C3D4E5\n"
                "Configuration register is 0x0\n")

    def _show_privilege(self, args: list[str], used: int) -> str:
        return f"Current privilege level is {15 if self.mode != 'exec' else 1}\n"

    def _show_clock(self, args: list[str], used: int) -> str:
        return time.strftime("*%H:%M:%S.000 UTC %a %b %d %Y\n", time.gmtime())

    def _show_running(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        return self.device.config.running()

    def _show_acls(self, args: list[str], used: int) -> str:
        if len(args) > 1:
            raise CliError(INVALID, used + 1)
        return self.device.config.access_lists(args[0] if args else "", self.device.hits())

    def _show_ip_interface(self, args: list[str], used: int) -> str:
        """``show ip interface [NAME]``: each interface's state, address and the lists bound on it."""
        if len(args) > 1:
            raise CliError(INVALID, used + 1)
        out = []
        for iface in self.device.config.interfaces.values():
            if args and iface.name.lower() != args[0].lower():
                continue
            state = "administratively down, line protocol is down" if iface.shutdown else "up, line protocol is up"
            out.append(f"{iface.name} is {state}")
            if not iface.address:
                out.append("  Internet protocol processing disabled")
                continue
            ip, mask = iface.address.split()
            out += [f"  Internet address is {ip}/{ipaddress.IPv4Network(f'0.0.0.0/{mask}').prefixlen}",
                    "  Broadcast address is 255.255.255.255", "  MTU is 1500 bytes", "  Helper address is not set",
                    "  Directed broadcast forwarding is disabled", "  Outgoing Common access list is not set",
                    f"  Outgoing access list is {iface.acl_out or 'not set'}",
                    "  Inbound Common access list is not set",
                    f"  Inbound  access list is {iface.acl_in or 'not set'}", "  Proxy ARP is enabled"]
        if args and not out:
            raise CliError(INVALID, used)
        return "\n".join(out) + "\n"

    def _show_arp(self, args: list[str], used: int) -> str:
        """``show arp``: the device's own addresses (age -) and its neighbours, as IOS prints them."""
        self._no_args(args, used)

        def mac(raw: str) -> str:
            digits = raw.replace(":", "").lower()
            return ".".join(digits[i:i + 4] for i in range(0, 12, 4))

        rows = [(iface.address.split()[0], "-", "0000.0c07.ac00", iface.name)
                for iface in self.device.config.interfaces.values() if iface.address]
        rows += [(address, "0", mac(hw), name) for address, hw, name in self.device.neighbours()]
        out = ["Protocol  Address          Age (min)  Hardware Addr   Type   Interface"]
        out += [f"Internet  {a:<16} {age:>8}   {hw:<14}  ARPA   {name}"
                for a, age, hw, name in sorted(rows, key=lambda r: ipaddress.IPv4Address(r[0]))]
        return "\n".join(out) + "\n"

    def _show_archive(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        path = self.device.config.archive_path
        if not path:
            return "Archive feature not enabled\n"
        return (f"The maximum archive configurations allowed is {self.device.config.archive_maximum or 10}.\n"
                f"The next archive file will be named {path}-1\n Archive #  Name\n")

    def _show_rollback_timer(self, args: list[str], used: int) -> str:
        d = self.device
        if d.revert_at is None:
            return NO_PENDING + "\n"
        left = max(0, int(d.revert_at - d.clock()))
        return (f"Timer type: Revert timer\nTimer value: {d.revert_minutes} min\n"
                f"Time remaining: {left // 3600:02d}:{left % 3600 // 60:02d}:{left % 60:02d}\n")

    def _configure(self, args: list[str], used: int) -> str:
        d = self.device
        if args:
            if [a.lower() for a in args[:2]] != ["revert", "timer"] or len(args) != 3:
                raise CliError(INVALID if len(args) != 2 else INCOMPLETE, used if len(args) != 2 else None)
            if not args[2].isdigit() or not 1 <= int(args[2]) <= 120:
                raise CliError(INVALID, used + 2)
            if not d.config.archive_path:
                return "Archive feature not enabled\n"
            if d.revert_at is not None:
                raise CliError("% Rollback Confirmed Change: a pending change must be confirmed or reverted first")
            d.snapshot = copy.deepcopy(d.config)
            d.revert_minutes = int(args[2])
            d.revert_at = d.clock() + d.revert_minutes * d.minute
        self.mode = "config"
        return "Enter configuration commands, one per line.  End with CNTL/Z.\n"

    def _confirm(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        if self.device.revert_at is None:
            return NO_PENDING + "\n"  # nothing to confirm: the timer already fired, or none was armed
        self.device.revert_at, self.device.snapshot = None, None
        return ""

    def _revert_now(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        d = self.device
        if d.revert_at is None:
            return NO_PENDING + "\n"
        d.revert_at = d.clock()
        d.tick()
        return "Rollback Done\n"

    def _write(self, args: list[str], used: int) -> str:
        if self.device.on_save:
            self.device.on_save(copy.deepcopy(self.device.config))
        return "Building configuration...\n[OK]\n"

    # -- configuration -----------------------------------------------------------------------------

    def _hostname(self, args: list[str], used: int) -> str:
        if len(args) != 1 or not re.fullmatch(r"[A-Za-z][\w-]{0,62}", args[0]):
            raise CliError(INCOMPLETE if not args else INVALID, None if not args else used)
        self.device.config.hostname = args[0]
        self.device.changed()
        return ""

    def _acl(self, args: list[str], used: int) -> str:
        if len(args) != 1:
            raise CliError(INCOMPLETE if not args else INVALID, None if not args else used + 1)
        if not re.fullmatch(r"[A-Za-z][\w.-]{0,63}", args[0]):
            raise CliError(INVALID, used)
        self.device.config.acls.setdefault(args[0], [])
        self.acl, self.mode = args[0], "config-ext-nacl"
        return ""

    def _no_acl(self, args: list[str], used: int) -> str:
        if len(args) != 1:
            raise CliError(INCOMPLETE if not args else INVALID, None if not args else used + 1)
        if self.device.config.acls.pop(args[0], None) is not None:
            self.device.changed()
        return ""

    def _interface(self, args: list[str], used: int) -> str:
        name = "".join(args)
        if name not in self.device.config.interfaces:
            raise CliError(INVALID, used) if args else CliError(INCOMPLETE)
        self.iface, self.mode = name, "config-if"
        return ""

    def _archive(self, args: list[str], used: int) -> str:
        self._no_args(args, used)
        self.mode = "config-archive"
        return ""

    def _archive_path(self, args: list[str], used: int) -> str:
        if len(args) != 1:
            raise CliError(INCOMPLETE)
        self.device.config.archive_path = args[0]
        return ""

    def _archive_maximum(self, args: list[str], used: int) -> str:
        if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 14:
            raise CliError(INVALID if args else INCOMPLETE, used if args else None)
        self.device.config.archive_maximum = int(args[0])
        return ""

    def _end(self, args: list[str], used: int) -> str:
        self.mode, self.acl, self.iface = "enable", "", ""
        return ""

    def _up(self, args: list[str], used: int) -> str:
        self.mode, self.acl, self.iface = "config", "", ""
        return ""

    def _do(self, args: list[str], used: int) -> str:
        mode, words = self.mode, self._words
        self.mode = "enable"
        try:
            return self._execute(" ".join(args))
        finally:
            self.mode, self._words = mode, words

    def _ace(self, args: list[str], used: int) -> str:
        entries = self.device.config.acls[self.acl]
        text = parse_ace(self._words)
        if any(e.text == text for e in entries):
            return ""  # IOS keeps one copy of an identical entry
        if any(lost in text for lost in self.device.lost_entries()):
            return ""  # an injected fault: the entry is gone before anyone reads the list again
        entries.append(AceEntry(seq=(entries[-1].seq if entries else 0) + 10, text=text))
        self.device.changed()
        return ""

    def _numbered_ace(self, words: list[str]) -> str:
        """``SEQ permit|deny|remark ...``: the entry at that sequence number, in order."""
        seq = int(words[0])
        if not 1 <= seq <= 2147483647:
            raise CliError(INVALID, 0)
        entries = self.device.config.acls[self.acl]
        text = parse_ace(words[1:], 1)
        if any(e.seq == seq for e in entries):
            raise CliError("% Duplicate sequence number")
        if any(e.text == text for e in entries):
            return ""
        if any(lost in text for lost in self.device.lost_entries()):
            return ""  # an injected fault (see Device.lost_entries)
        entries.append(AceEntry(seq=seq, text=text))
        entries.sort(key=lambda e: e.seq)
        self.device.changed()
        return ""

    def _no_ace(self, args: list[str], used: int) -> str:
        entries = self.device.config.acls[self.acl]
        if len(args) == 1 and args[0].isdigit():
            kept = [e for e in entries if e.seq != int(args[0])]
        else:
            text = parse_ace(args, used)
            kept = [e for e in entries if e.text != text]
        if len(kept) != len(entries):
            self.device.config.acls[self.acl] = kept
            self.device.changed()
        return ""

    def _access_group(self, args: list[str], used: int) -> str:
        if len(args) != 2 or args[1] not in ("in", "out"):
            raise CliError(INCOMPLETE if len(args) < 2 else INVALID, None if len(args) < 2 else used + 1)
        iface = self.device.config.interfaces[self.iface]
        setattr(iface, f"acl_{args[1]}", args[0])
        self.device.changed()
        return ""

    def _no_access_group(self, args: list[str], used: int) -> str:
        direction = args[-1] if args else ""
        if direction not in ("in", "out") or len(args) > 2:
            raise CliError(INCOMPLETE if not args else INVALID, None if not args else used + len(args) - 1)
        iface = self.device.config.interfaces[self.iface]
        current = getattr(iface, f"acl_{direction}")
        if len(args) == 2 and current and args[0] != current:
            return f"% Access group {args[0]} not applied in this direction\n"
        setattr(iface, f"acl_{direction}", "")
        self.device.changed()
        return ""

    def _ip_address(self, args: list[str], used: int) -> str:
        if len(args) != 2:
            raise CliError(INCOMPLETE if len(args) < 2 else INVALID, None if len(args) < 2 else used + 2)
        for i, a in enumerate(args):
            _ip(a, used + i)
        self.device.config.interfaces[self.iface].address = " ".join(args)
        return ""

    def _description(self, args: list[str], used: int) -> str:
        self.device.config.interfaces[self.iface].description = " ".join(args)
        return ""

    def _shutdown(self, args: list[str], used: int) -> str:
        self.device.config.interfaces[self.iface].shutdown = True
        self.device.changed()
        return ""

    def _no_shutdown(self, args: list[str], used: int) -> str:
        self.device.config.interfaces[self.iface].shutdown = False
        self.device.changed()
        return ""

    def _no_args(self, args: list[str], used: int) -> None:
        if args:
            raise CliError(INVALID, used)


def _word_column(line: str, word: int) -> int:
    """The column where word number ``word`` of ``line`` starts (its end, past the last word)."""
    spans = [m.start() for m in re.finditer(r"\S+", line)]
    if word < len(spans):
        return spans[word]
    return len(line.rstrip()) + 1


def _filter(out: str, pipe: str, offset: int) -> str:
    """``| include RE`` and its kin, applied to a command's output."""
    words = pipe.split(None, 1)
    if not words:
        raise CliError(INCOMPLETE)
    kinds = [k for k in _FILTERS if k.startswith(words[0].lower())]
    if len(kinds) != 1:
        raise CliError(INVALID, offset + 1)
    if len(words) < 2:
        raise CliError(INCOMPLETE)
    try:
        regex = re.compile(words[1].strip())
    except re.error:
        raise CliError(INVALID, offset + 2) from None
    lines = out.splitlines()
    kind = kinds[0]
    if kind == "include":
        kept = [x for x in lines if regex.search(x)]
    elif kind == "exclude":
        kept = [x for x in lines if not regex.search(x)]
    elif kind == "begin":
        start = next((i for i, x in enumerate(lines) if regex.search(x)), len(lines))
        kept = lines[start:]
    else:  # section: every top-level line that matches, with its indented children
        kept, inside = [], False
        for x in lines:
            if x and not x[0].isspace():
                inside = bool(regex.search(x))
            elif inside and not x:
                inside = False
            if inside or (x.startswith(" ") and regex.search(x)):
                kept.append(x)
    return "\n".join(kept) + ("\n" if kept else "")
