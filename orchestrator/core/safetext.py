"""Text from outside (operators, inventories, plans, detections, Ansible) as data, never as markup.

- ``check_text`` refuses control characters and oversized values where they have no business (a worm
  name, an operator, a reason), so a terminal never receives an escape sequence from the journal;
- ``md`` escapes a value for the Markdown report (HTML, tables, links, emphasis, line structure);
- ``redact`` masks secrets on values (a data tree), before anything is serialised;
- ``scrub_failure`` is what the journal keeps of an Ansible failure message: one line, bounded,
  credentials masked.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from orchestrator.core.errors import UserError

REDACTED = "[REDACTED]"
# bidirectional overrides and isolates: they reorder what a reader sees (a filename, a host name)
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_MD_ESCAPES = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "|": "\\|", "~": "\\~",
               "#": "\\#", "!": "\\!", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CREDENTIAL = re.compile(
    r"(?i)\b(password|passwd|pwd|passphrase|secret|token|api[_-]?key|auth(?:orization)?|cookie)"
    r"(\"?\s*[:=]\s*\"?|\s+)([^\s\"',;]+)")


def _bad_char(ch: str, multiline: bool) -> bool:
    if ch in "\n\t" and multiline:
        return False
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI


def text_problem(text: str, limit: int = 200, multiline: bool = False) -> str | None:
    """What is wrong with a free-text value (empty, too long, a control character), or None."""
    if not text.strip():
        return "must not be empty"
    if len(text) > limit:
        return f"is {len(text)} characters long; at most {limit}"
    bad = next((ch for ch in text if _bad_char(ch, multiline)), None)
    if bad is not None:
        return f"holds the control character U+{ord(bad):04X} at position {text.index(bad) + 1}; type plain text"
    return None


def check_text(value: str, what: str, limit: int = 200, multiline: bool = False) -> str:
    """``value`` stripped, or a UserError naming ``what`` when it is empty, too long or holds control
    characters (newlines and tabs are allowed when ``multiline``)."""
    text = value.strip()
    problem = text_problem(text, limit, multiline)
    if problem:
        raise UserError(f"{what} {problem}")
    return text


def one_line(text: str) -> str:
    """Control characters, line and paragraph breaks and bidi controls as spaces (U+FFFD for bidi)."""
    out = []
    for ch in text:
        if ch in _BIDI:
            out.append("\ufffd")
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


FIELD_MAX = 200  # characters of an outside field (an alert's signature, an agent's name) irm keeps


def shown(value: object, limit: int = FIELD_MAX) -> str:
    """A field written by someone irm does not trust (an IDS alert, an EDR record) as irm keeps and prints
    it: control, line-break and bidi characters shown escaped (``\\x1b``, ``\\u202e``), cut to ``limit``
    characters (``...`` marks the cut). Linear in the field's length; an attacker's escape sequence never
    reaches a terminal, a 100 KB signature never reaches a table."""
    text = str(value)
    cut = len(text) > limit
    out = []
    for ch in text[:limit]:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if cut else "")


def md(value: object) -> str:
    """A value as literal text inside one Markdown line or table cell."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in one_line(str(value)))


def redact(value: Any, secrets: list[str]) -> Any:
    """The data tree with every occurrence of a secret masked in every string (and key), the longest
    secret first, before any serialisation: quotes, backslashes or non-ASCII letters in a secret
    cannot hide it behind JSON escaping."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for secret in ordered:
                v = v.replace(secret, REDACTED)
            return v
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)


def scrub_failure(text: str, limit: int = 300) -> str:
    """What the journal keeps of a failure message: its first non-empty line, control characters
    removed, credentials (``password=...``, ``token: ...``) masked, at most ``limit`` characters."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "failed")
    line = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", one_line(line))
    return line if len(line) <= limit else line[:limit] + "..."


def no_control(value: Any) -> Any:
    """A pydantic field validator's body: ``value`` unchanged, or ValueError when one of its strings
    (also inside lists and mappings) holds a control character or a bidi control."""
    if isinstance(value, str):
        bad = next((ch for ch in value if _bad_char(ch, multiline=False)), None)
        if bad is not None:
            raise ValueError(f"holds the control character U+{ord(bad):04X}; plain text expected")
    elif isinstance(value, dict):
        for k, v in value.items():
            no_control(k)
            no_control(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            no_control(v)
    return value
