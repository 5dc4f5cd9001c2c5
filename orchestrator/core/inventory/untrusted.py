"""An inventory from someone else, read without running it.

An Ansible inventory is code: an executable file in it is run as a dynamic inventory script, a YAML file
naming a ``plugin`` runs that plugin, and every value is a Jinja template, whose ``lookup``, ``query``
or ``pipe`` reads files and runs commands on the SOC. ``irm validate --untrusted`` and ``irm map
--untrusted`` look at the files first and refuse such an inventory, naming the file, before Ansible
reads any of it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from orchestrator.core.errors import UserError
from orchestrator.core.safefile import PLAN_MAX

# Jinja that reaches outside the inventory: lookups and queries (files, pipes, URLs, environment), and
# the filters and tests that run code or read files.
_REACHING = re.compile(r"(\{\{|\{%)[^}]*?\b(lookup|query|q|pipe|env|file|url|template|include|import)\b")
_PLUGIN = re.compile(r"^plugin\s*:", re.MULTILINE)
MAX_FILES = 10_000


def problems(source: Path) -> list[str]:
    """Why the inventory at ``source`` would run something when Ansible reads it (empty: it would not)."""
    if not source.exists():
        return [f"inventory '{source}' does not exist"]
    files = [source] if not source.is_dir() else sorted(p for p in source.rglob("*") if not p.is_dir())
    out: list[str] = []
    for path in files[:MAX_FILES]:
        try:
            st = os.stat(path)
        except OSError as exc:
            out.append(f"{path}: cannot be read ({exc.strerror})")
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append(f"{path}: not a regular file")
            continue
        if st.st_mode & 0o111:
            out.append(f"{path}: executable, so Ansible would run it as a dynamic inventory script")
            continue
        if st.st_size > PLAN_MAX:
            out.append(f"{path}: more than {PLAN_MAX:,} bytes, larger than any inventory file irm reads")
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix in (".yml", ".yaml", "") and _PLUGIN.search(text):
            out.append(f"{path}: names an inventory plugin, which Ansible would run")
        for number, line in enumerate(text.splitlines(), 1):
            found = _REACHING.search(line)
            if found:
                out.append(f"{path}:{number}: a template calling '{found.group(2)}' reads or runs something "
                           "outside the inventory")
                break
    if len(files) > MAX_FILES:
        out.append(f"{source}: more than {MAX_FILES} files")
    return out


def check(source: Path) -> None:
    found = problems(source)
    if found:
        raise UserError(*(f"--untrusted: {p}" for p in found[:5]),
                        *([f"--untrusted: and {len(found) - 5} more"] if len(found) > 5 else []))
