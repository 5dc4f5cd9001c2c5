"""Every benchmark writes its own table into the documentation: ``--markdown FILE`` on any bench command
replaces the section between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in FILE with the table
it just measured, dated, with the machine, irm's version and commit, and the command that measured it.
Nothing in docs/benchmarks.md is typed by hand from a past run."""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def take_markdown(argv: list[str]) -> tuple[list[str], Path | None]:
    """``argv`` without ``--markdown FILE``, and FILE (None when not given)."""
    if "--markdown" not in argv:
        return argv, None
    i = argv.index("--markdown")
    if i + 1 >= len(argv):
        sys.exit("--markdown needs a FILE")
    return argv[:i] + argv[i + 2:], Path(argv[i + 1])


def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = ""
    return f"{platform.node()} ({cores} cores{memory}, Linux {platform.release()}, Python {platform.python_version()})"


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (proc.stdout.strip() or "unknown") + (" with local changes" if dirty else "")


def publish(path: Path | None, name: str, lines: list[str], argv: list[str] | None = None) -> None:
    """Print ``lines``; with ``path``, write them as section ``name`` of that Markdown file."""
    print("\n".join(lines), flush=True)
    if path is None:
        return
    from orchestrator import __version__

    script = Path(sys.argv[0]).name
    command = f"bench/{script}" if script.endswith(".sh") else shlex.join(
        [".venv/bin/python", f"bench/{script}", *(sys.argv[1:] if argv is None else argv)])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (f"Measured {when} on {machine()}, irm {__version__} (commit {_commit()}), by `{command}`:\n\n"
            + "\n".join(lines))
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    found = pattern.search(text)
    text = pattern.sub(lambda _: block, text) if found else text.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(text, encoding="utf-8")
    print(f"written to {path} (section {name})", file=sys.stderr)


def _junit(name: str, junit: Path, markdown: Path, command: str) -> None:
    """A pytest campaign's result (bench/kill_every_stage.sh): one row per test, and the total."""
    import xml.etree.ElementTree as ET

    cases = list(ET.parse(junit).iter("testcase"))
    lines = ["| test | outcome | seconds |", "|---|---|---|"]
    passed = 0
    for case in cases:
        bad = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        passed += not bad and not skipped
        outcome = "FAILED" if bad else "skipped" if skipped else "passed"
        lines.append(f"| `{case.get('name')}` | {outcome} | {float(case.get('time') or 0):.0f} |")
    total = sum(float(c.get("time") or 0) for c in cases)
    lines.append(f"| all | {passed} of {len(cases)} passed | {total:.0f} |")
    sys.argv[0] = command
    publish(markdown, name, lines, [])


if __name__ == "__main__":  # python bench/markdown.py junit NAME JUNIT_XML MARKDOWN COMMAND
    sys.path.insert(0, str(ROOT))
    _junit(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
