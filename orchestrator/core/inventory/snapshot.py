"""A snapshot of what ansible-core loaded from a static inventory, so the views that only read the
journal (``irm status``) answer without importing Ansible.

The snapshot holds the raw data ``load.load_raw`` returns (before validation: every load still runs
``build_inventory``), keyed by everything that could change what Ansible would load: each inventory
file's path, size, modification time and content hash, ansible.cfg's, the Ansible environment
variables and irm's version. Any change, and the next load goes through Ansible again. Only static
inventories are snapshotted: YAML, INI or JSON files, none executable, no inventory plugin
configuration, no template that calls anything (a lookup, ``now()``: their value may change with
nothing on disk changing), and no vault value (a decrypted secret is never written to disk). Snapshots
are 0600 files in a 0700 directory (``$IRM_CACHE_DIR``, else ``$XDG_CACHE_HOME/irm``, else
``~/.cache/irm``); an unreadable or damaged one is ignored, and so is anything irm did not write itself
(a link, a FIFO, a device, a file of another user or one others may write, or the whole directory when it
is a link or others may write it). The same store keeps the warm path's resolved options
(``core.warm_resolve``), which decide where irm connects and what it runs there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.core.inventory.validate import RawGroup, RawHost, RawInventory

STATIC_SUFFIXES = {"", ".yml", ".yaml", ".ini", ".json"}
_CALL = re.compile(r"\{[{%][^}]*\(")  # a template expression that calls a lookup, a function or a filter


def cache_dir() -> Path:
    if os.environ.get("IRM_CACHE_DIR"):
        return Path(os.environ["IRM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "irm"


def _files(source: Path) -> list[Path] | None:
    """The inventory's files, or None when it is not a static inventory irm may snapshot."""
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
    else:
        return None
    for f in files:
        st = f.stat()
        if f.suffix not in STATIC_SUFFIXES or st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            return None
    return files


def key(source: Path) -> str | None:
    """What the snapshot of ``source`` is stored under, or None when it must not be snapshotted."""
    source = source.resolve()
    files = _files(source)
    if files is None:
        return None
    parts: list[Any] = [__version__, str(source)]
    for f in files:  # content too: a rewrite within the clock's granularity keeps size and time
        st = f.stat()
        parts.append((str(f), st.st_size, st.st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest()))
    cfg = os.environ.get("ANSIBLE_CONFIG")
    if cfg and Path(cfg).is_file():
        st = Path(cfg).stat()
        parts.append((cfg, st.st_size, st.st_mtime_ns))
    parts.append(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_")))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def static_content(source: Path) -> bool:
    """No vault value and no inventory plugin configuration in any of the files."""
    for f in _files(source.resolve()) or []:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        if "$ANSIBLE_VAULT" in text or _CALL.search(text) or any(
                line.startswith("plugin:") for line in text.splitlines()):
            return False
    return True


def _path(kind: str, source: Path, k: str) -> Path:
    """One file per inventory and kind: its source's hash, then the key."""
    return cache_dir() / f"{kind}-{source_id(source)}-{k[:32]}.json"


def source_id(source: Path) -> str:
    return hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]


MAX_BYTES = 64 * 1024 * 1024  # far above what a snapshot of the largest inventory holds


def _private_dir(create: bool) -> Path | None:
    """The cache directory when it is irm's own: a real directory (no link), owned by this user and
    writable by no one else; None otherwise (nothing is then read from it or written to it)."""
    folder = cache_dir()
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return folder


def load(kind: str, source: Path, k: str) -> Any:
    """What ``store`` kept for ``source`` under ``k``, or None: none, unreadable or damaged, or not a file
    irm wrote itself (a link, a FIFO, a device, someone else's file or one others may write, in a directory
    that is not irm's own). What is kept here decides where irm connects and what it runs there."""
    if _private_dir(create=False) is None:
        return None
    try:
        fd = os.open(_path(kind, source, k), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022
                or st.st_size > MAX_BYTES):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return json.loads(f.read(MAX_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def store(kind: str, source: Path, k: str, data: Any) -> None:
    """Keep ``data`` for ``source`` under ``k`` (0600 in irm's own directory, written under a new private
    name that follows no link and renamed over its name, the older ones of its kind removed); a failure
    only costs speed."""
    folder = _private_dir(create=True)
    if folder is None:
        return
    final = _path(kind, source, k)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        for old in folder.glob(f"{kind}-{source_id(source)}-*.json"):  # the older snapshots (a link: itself)
            if old != final:
                old.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, final)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read(source: Path, k: str | None) -> RawInventory | None:
    """The snapshot of ``source`` stored under ``k`` (``key``, taken before loading: loading through
    Ansible sets variables of its own), if there is one; None otherwise."""
    data = load("inventory", source, k) if k is not None else None
    if data is None:
        return None
    try:
        return RawInventory(
            source=data["source"],
            groups={n: RawGroup(**g) for n, g in data["groups"].items()},
            hosts={n: RawHost(**{**h, "own_keys": set(h["own_keys"])}) for n, h in data["hosts"].items()},
        )
    except (KeyError, TypeError, AttributeError):
        return None


def write(source: Path, k: str | None, raw: RawInventory) -> None:
    """Store the snapshot under ``k`` (never for a dynamic or vaulted inventory); a failure only costs
    speed."""
    if k is None or not static_content(source):
        return
    data = asdict(raw)
    for h in data["hosts"].values():
        h["own_keys"] = sorted(h["own_keys"])
    store("inventory", source, k, data)
