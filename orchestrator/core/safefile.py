"""Files irm reads and writes on the operator's word, when the path may be hostile.

Reads: only a regular file, opened without waiting (a FIFO never hangs irm), read up to a stated limit
(``/dev/zero`` or a log grown to gigabytes never fills memory). Writes: each output file is written under
a private name created with ``O_EXCL | O_NOFOLLOW`` in the output directory and renamed over its name,
so a symbolic link planted there (``out/report.json -> /etc/passwd``) is replaced, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from orchestrator.core.errors import UserError

MiB = 1024 * 1024
# Limits of what irm reads from one file; each is far above what a legitimate file of its kind holds.
PLAN_MAX = 1 * MiB  # a remediation plan, an incident file, a containment policy
KEY_MAX = 16 * 1024  # an SSH public or private key
LOG_CHUNK_MAX = 64 * MiB  # new lines read from a detection log per poll (the rest on the next poll)


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path, what: str) -> int:
    """A file descriptor on ``path``, a regular file (links followed: the operator named it), opened
    without blocking; ``UserError`` naming ``what`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(f"{what} {path}: cannot be read: {_describe(mode)}, not a regular file")
    return fd


def open_log(path: Path) -> BinaryIO:
    """A detection log opened for reading: a regular file, opened without blocking (``OSError``
    otherwise: the caller counts the source unreadable). Read it in chunks of at most LOG_CHUNK_MAX."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_describe(mode)}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, what: str, limit: int) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes."""
    fd = open_regular(path, what)
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise UserError(f"{what} {path}: more than {limit:,} bytes, larger than any {what} irm reads")
    return data


def read_text_bounded(path: Path, what: str, limit: int, expected: str = "text") -> str:
    data = read_bounded(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); expected {expected}") from None


def write_files(out: Path, files: dict[str, str], what: str) -> None:
    """Write each ``name: text`` into directory ``out`` (created, 0755 as umask allows), each file whole
    or not at all, never through a link or into a special file planted at its name."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not out.is_dir():
            raise UserError(f"{what}: {out} is not a directory")
        for name, text in files.items():
            dest = out / name
            if dest.is_dir() and not dest.is_symlink():
                raise UserError(f"{what}: {dest} is a directory; remove it or choose another --out")
            tmp = out / f".{name}.{uuid.uuid4().hex}.new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, dest)  # replaces a link at dest itself; its target is never opened
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise UserError(f"{what}: cannot write into {out} ({exc.strerror or exc})") from None
