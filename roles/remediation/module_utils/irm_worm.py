"""Finding a worm on a Linux host: shared by irm_disinfect and irm_verify (module_utils of the role)."""

from __future__ import annotations

import os


def worm_processes(patterns, same_netns_only):
    """(pid, command line) of every process whose command line contains one of ``patterns``; with
    ``same_netns_only``, only those in this process's network namespace. Never PID 1, this module,
    its parent or Ansible's own wrapper."""
    if not patterns:
        return []
    skip = (1, os.getpid(), os.getppid())
    my_ns = os.stat("/proc/self/ns/net").st_ino if same_netns_only else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
            if same_netns_only and os.stat(f"/proc/{entry}/ns/net").st_ino != my_ns:
                continue
        except OSError:
            continue
        if cmdline and "AnsiballZ" not in cmdline and any(p in cmdline for p in patterns):
            found.append((int(entry), cmdline))
    return found


def on_host(root, path):
    """The plan's absolute ``path`` on this host, under ``root`` when set (lab hosts)."""
    return os.path.join(root, path.lstrip("/")) if root else path
