"""Finding a worm on a Linux host: shared by irm_disinfect and irm_verify (the collection's module_utils)."""

from __future__ import annotations

import os


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _ppid(pid):
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0
    fields = stat.rsplit(b")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else 0


def own_lineage():
    """This process and every ancestor up to PID 1: the module, Ansible's wrapper, the shell and sshd
    session that run it. Recognised by ancestry, never by what their command line says."""
    lineage, pid = {1}, os.getpid()
    while pid > 1 and pid not in lineage:
        lineage.add(pid)
        pid = _ppid(pid)
    return lineage


def matches(entry, comm, exe, argv0):
    """An entry is an absolute executable path (compared with the process's executable, or its argv[0]
    when the executable cannot be read), or an exact process name (compared with the kernel's name of
    the process, which it truncates to 15 characters, and the basenames of the executable and argv[0])."""
    if entry.startswith("/"):
        return entry in (exe, argv0)
    names = {os.path.basename(exe or ""), os.path.basename(argv0 or "")}
    return entry in names or (comm is not None and len(entry) >= 15 and comm == entry[:15]) or entry == comm


def worm_processes(entries, same_netns_only):
    """(pid, command line) of every process an entry of the plan names exactly; with
    ``same_netns_only``, only those in this process's network namespace. Never a kernel thread, PID 1,
    this module or any of its ancestors."""
    if not entries:
        return []
    skip = own_lineage()
    my_ns = os.stat("/proc/self/ns/net").st_ino if same_netns_only else None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        raw = _read(f"/proc/{entry}/cmdline")
        if not raw:  # a kernel thread, or gone
            continue
        try:
            if same_netns_only and os.stat(f"/proc/{entry}/ns/net").st_ino != my_ns:
                continue
            exe = os.readlink(f"/proc/{entry}/exe").removesuffix(" (deleted)")
        except OSError:
            exe = None
        comm = (_read(f"/proc/{entry}/comm") or b"").decode(errors="replace").strip() or None
        argv = raw.split(b"\0")
        argv0 = argv[0].decode(errors="replace")
        if any(matches(e, comm, exe, argv0) for e in entries):
            found.append((int(entry), raw.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def on_host(root, path):
    """The plan's absolute ``path`` on this host, under ``root`` when set (lab hosts)."""
    return os.path.join(root, path.lstrip("/")) if root else path
