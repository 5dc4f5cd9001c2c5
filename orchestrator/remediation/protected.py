"""What a remediation plan may never name: the one list, checked by the plan validator before any host is
touched (docs/runbook/4-remediation.md, "What a plan may not name").

A plan names the worm's own processes, files, services and registry keys; irm kills, deletes, disables
and removes exactly those. An entry that would take down the system, cut irm's management path (sshd,
WinRM, the firewall and its service, the Python interpreter Ansible runs in, irm's journal and state)
or destroy credentials is refused, as is any wildcard. Everything is compared case-insensitively, ``/``
and ``\\`` alike, a Windows drive letter ignored.

A worm that hides under an essential name (``svchost.exe`` in ``C:\\Windows\\Temp``) is named by its
executable's path outside the system's own directories.
"""

from __future__ import annotations

import re

WILDCARDS = re.compile(r"[*?\[\]]")

# Process (executable) names, compared without ``.exe`` and without a version suffix (python3.11).
ESSENTIAL_PROCESSES = frozenset({
    # Linux: init, the management path, the firewall, logging, the interpreters irm's modules run in
    "init", "systemd", "kthreadd", "sshd", "sshd-session", "sshd-auth", "ssh", "ssh-agent", "sh", "bash", "dash",
    "sudo", "su", "login", "dbus-daemon", "dbus-broker", "journald", "systemd-journal", "systemd-journald",
    "systemd-logind", "systemd-udevd", "systemd-networkd", "systemd-resolved", "systemd-timesyncd", "udevd",
    "networkmanager", "python", "ansible", "ansible-playbook", "nft", "nftables", "iptables", "firewalld",
    "rsyslogd", "cron", "crond", "agetty", "polkitd", "irm",
    # Windows: the kernel's and the session's processes, WinRM, the firewall, Defender, the shells
    "system", "idle", "registry", "memory compression", "smss", "csrss", "wininit", "winlogon", "services",
    "lsass", "lsaiso", "svchost", "explorer", "dwm", "spoolsv", "wsmprovhost", "winrshost", "powershell", "pwsh",
    "cmd", "conhost", "msmpeng", "nissrv", "mpdefendercoreservice", "taskhostw", "sihost", "fontdrvhost",
    "wmiprvse", "trustedinstaller", "tiworker",
})

# Services (systemd units without ``.service``, Windows service names).
ESSENTIAL_SERVICES = frozenset({
    # Linux
    "ssh", "sshd", "ssh.socket", "sshd.socket", "nftables", "iptables", "ip6tables", "firewalld", "ufw",
    "systemd-journald", "systemd-logind", "systemd-networkd", "systemd-resolved", "systemd-udevd", "dbus",
    "dbus-broker", "networking", "networkmanager", "rsyslog", "cron", "getty@tty1", "irm-boot", "irm-deadman",
    # Windows: WinRM and what it needs, the firewall, Defender, the update and scheduling services irm uses
    "winrm", "mpssvc", "bfe", "eventlog", "rpcss", "rpceptmapper", "dcomlaunch", "lsm", "samss", "netlogon",
    "lanmanworkstation", "lanmanserver", "dnscache", "nsi", "dhcp", "w32time", "windefend", "wdnissvc",
    "schedule", "wuauserv", "bits", "gpsvc", "winmgmt", "cryptsvc", "profsvc", "sens", "eventsystem",
    "termservice", "trustedinstaller", "plugplay", "power",
})

# Directories whose entries may never be deleted (the directory itself or anything under it).
_PROTECTED_TREES = (
    "/dev", "/proc", "/sys", "/boot", "/run", "/etc/ssh", "/etc/pam.d", "/etc/sudoers.d", "/etc/systemd",
    "/etc/nftables.d", "/var/lib/irm", "/etc/irm", "/usr/lib/systemd", "/lib/systemd",
    "windows/system32/config", "windows/ntds", "windows/system32/drivers", "windows/boot",
    "windows/system32/winevt", "windows/servicing", "windows/winsxs",
)
# Single files whose loss locks the operator out or destroys credentials.
_PROTECTED_FILES = frozenset({
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/hosts", "/etc/fstab",
    "/etc/nftables.conf", "/etc/resolv.conf", "/etc/machine-id", "/etc/os-release", "/etc/hostname",
    "pagefile.sys", "hiberfil.sys", "swapfile.sys", "bootmgr", "windows/system32/ntoskrnl.exe",
    "windows/system32/hal.dll", "windows/system32/winload.exe",
})
# Directories of the system's own executables (exactly, then with everything under them): a file or process
# there named like an essential process is the system's, never the worm's.
_SYSTEM_BIN = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/lib64",
                         "windows"})
_SYSTEM_BIN_TREES = ("/usr/lib", "/usr/libexec", "/lib", "windows/system32", "windows/syswow64", "program files",
                     "program files (x86)")
# Directories (exactly) that hold everything: naming one deletes the system or every profile.
PROTECTED_DIRS = frozenset({
    "", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/run", "/sbin",
    "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var", "/var/lib",
    "/var/log", "/var/tmp", "windows", "windows/system32", "windows/syswow64", "windows/temp", "program files",
    "program files (x86)", "programdata", "users", "users/public", "users/default",
})
# Registry keys (below the hive) never removed: these, and for the trees, anything under them.
_PROTECTED_KEYS = frozenset({
    "software", "system", "software/microsoft", "software/microsoft/windows",
    "software/microsoft/windows/currentversion", "software/microsoft/windows/currentversion/run",
    "software/policies", "system/currentcontrolset", "system/currentcontrolset/services", "software/wow6432node",
})
_PROTECTED_KEY_TREES = (
    "sam", "security", "system/currentcontrolset/control", "system/controlset001", "system/controlset002",
    "software/microsoft/windows nt/currentversion/winlogon", "software/policies/microsoft/windows/winrm",
    "software/microsoft/windows/currentversion/wsman", "software/policies/microsoft/windowsfirewall",
    "software/microsoft/windows defender", "software/policies/microsoft/windows defender",
    "bcd00000000",
)


def _norm(path: str) -> str:
    """Lower case, one ``/`` as separator, no trailing one, a drive letter dropped (``c:/windows`` ->
    ``windows``)."""
    norm = re.sub(r"[\\/]+", "/", path).rstrip("/").lower()
    drive = re.match(r"^[a-z]:/?", norm)
    return norm[drive.end():].strip("/") if drive else norm


def _base(name: str) -> str:
    """An executable's name as ESSENTIAL_PROCESSES holds it: no directory, no ``.exe``, no version suffix."""
    leaf = re.split(r"[\\/]", name)[-1].lower()
    return re.sub(r"(\.exe|[0-9.]+)$", "", leaf.removesuffix(".exe")) or leaf


def _under(norm: str, trees: tuple[str, ...] | frozenset[str]) -> bool:
    return any(norm == t or norm.startswith(t + "/") for t in trees)


def _in_system_bin(norm: str) -> bool:
    parent = norm.rsplit("/", 1)[0] if "/" in norm else ""
    return parent in _SYSTEM_BIN or _under(parent, _SYSTEM_BIN_TREES)


def process_problem(entry: str) -> str | None:
    """An exact process name or an absolute executable path; not the system's, not irm's path."""
    if entry != entry.strip() or not entry:
        return f"'{entry}' has surrounding spaces or is empty: an exact process name or an executable path"
    if WILDCARDS.search(entry):
        return f"'{entry}' has a wildcard: name the worm's process exactly"
    if entry.startswith("/") or re.match(r"^[A-Za-z]:\\", entry):
        parts = [p for p in re.split(r"[\\/]+", entry) if p]
        if ".." in parts or "." in parts or entry.endswith(("/", "\\")) or _norm(entry) in PROTECTED_DIRS:
            return f"'{entry}' is not an executable's path"
        if _base(entry) in ESSENTIAL_PROCESSES and _in_system_bin(_norm(entry)):
            return (f"'{entry}' is an essential process of the system or of the management path: name the "
                    "worm's own executable")
        return None
    if re.search(r"[\\/<>|\"]", entry):
        return (f"'{entry}' is neither an exact process name (no path separators or wildcards) nor an absolute "
                "executable path")
    if entry.lower() in ESSENTIAL_PROCESSES or _base(entry) in ESSENTIAL_PROCESSES:
        return (f"'{entry}' is an essential process of the system or of the management path: name the worm's own "
                "executable by its path")
    return None


def file_problem(path: str) -> str | None:
    """An absolute path of one of the worm's files; not a system, credential or device file, not irm's."""
    if not (path.startswith("/") or re.match(r"^[A-Za-z]:\\", path)):
        return f"'{path}' is not an absolute path"
    if WILDCARDS.search(path):
        return f"'{path}' has a wildcard: name the worm's files exactly"
    parts = [p for p in re.split(r"[\\/]+", path) if p]
    if ".." in parts or "." in parts:
        return f"'{path}' is not a plain path: name the worm's own files"
    norm = _norm(path)
    if norm in PROTECTED_DIRS:
        return f"'{path}' is a root, system or user-profile directory: name the worm's own files"
    if norm in _PROTECTED_FILES or _under(norm, _PROTECTED_TREES) or ".ssh" in norm.split("/") \
            or norm.rsplit("/", 1)[-1] in ("ntds.dit", "authorized_keys", "authorized_keys2") \
            or (_base(norm) in ESSENTIAL_PROCESSES and _in_system_bin(norm)):
        return (f"'{path}' is a system, credential, device or management-path file (or irm's own): name the "
                "worm's own files")
    return None


def service_problem(name: str) -> str | None:
    """A service the worm installed; not one the system or irm's management path needs."""
    if not name.strip() or name != name.strip() or len(name) > 200 or re.search(r"[\\/\n]", name):
        return f"'{name}' is not a service name"
    if WILDCARDS.search(name):
        return f"'{name}' has a wildcard: name the worm's service exactly"
    unit = name.lower().removesuffix(".service")
    if unit in ESSENTIAL_SERVICES or unit.startswith(("systemd-", "irm-")):
        return f"'{name}' is a service the system or irm's management path needs: name the worm's own service"
    return None


def key_problem(key: str) -> str | None:
    """A registry key the worm added; not a hive, a system key, or one WinRM, logon or the firewall needs."""
    if WILDCARDS.search(key):
        return f"'{key}' has a wildcard: name the worm's key exactly"
    rest = _norm(key.split(":", 1)[1] if ":" in key else key).strip("/")
    if rest in _PROTECTED_KEYS or _under(rest, _PROTECTED_KEY_TREES):
        return f"'{key}' is a hive or a system key: name the worm's own key"
    if rest.startswith("system/currentcontrolset/services/"):
        service = rest.split("/")[3]
        if service_problem(service):
            return f"'{key}' is the key of a service the system or irm needs: name the worm's own key"
    return None
