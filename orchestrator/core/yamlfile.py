"""Operator-written YAML files (incident records, remediation plans): one-line errors, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.core.errors import UserError
from orchestrator.core.safefile import PLAN_MAX, read_text_bounded


def load_yaml_mapping(path: Path, expected: str) -> dict[str, Any]:
    """The file's top-level mapping; ``expected`` names its keys for the error message."""
    text = read_text_bounded(path, "file", PLAN_MAX, f"a YAML file with {expected}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with {expected}")
    return data


def validation_error(exc: ValidationError, where: str) -> UserError:
    """One line per problem: where, which key, what is wrong."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: key '{loc}': {msg}" if loc else f"{where}: {msg}")
    return UserError(*lines)
