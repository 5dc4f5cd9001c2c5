"""Operator-written YAML files (incident records, remediation plans): one-line errors, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.core.errors import UserError
from orchestrator.core.safefile import PLAN_MAX, read_text_bounded
from orchestrator.core.safetext import one_line


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (a second ``disinfection:`` block
    would silently replace the reviewed one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base constructor says so
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{excerpt(str(key))}' is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys."""
    return yaml.load(text, Loader=_UniqueKeys)


def load_yaml_mapping(path: Path, expected: str) -> dict[str, Any]:
    """The file's top-level mapping; ``expected`` names its keys for the error message."""
    text = read_text_bounded(path, "file", PLAN_MAX, f"a YAML file with {expected}")
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with {expected}")
    return data


MAX_PROBLEMS = 5  # lines an error shows; the rest are counted
EXCERPT = 40  # characters of any one key quoted from the input


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A short, flattened excerpt of input text for an error line (a file given by mistake, such as a
    password file, is never echoed whole)."""
    flat = one_line(text)
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _part(key: object) -> str:
    """One step of a key's path as an error shows it: a name or an index as such; anything else (a
    line of a file that is not YAML for irm, a secret) is not quoted."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z_][\w-]{0,39}|\d{1,9}", text) else "<not a key name>"


def validation_error(exc: ValidationError, where: str) -> UserError:
    """One line per problem (the first few, then a count): where, which key, what is wrong; keys quoted
    as short excerpts."""
    lines = []
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS]:
        loc = excerpt(".".join(_part(p) for p in err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: key '{loc}': {msg}" if loc else f"{where}: {msg}")
    if len(errors) > MAX_PROBLEMS:
        lines.append(f"{where}: and {len(errors) - MAX_PROBLEMS} more problem(s)")
    return UserError(*lines)
