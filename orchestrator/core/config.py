"""irm's configuration file, found the way Ansible finds ansible.cfg.

The first that exists of: ``$IRM_CONFIG``, ``./irm.toml``, ``~/.config/irm/irm.toml``, ``/etc/irm/irm.toml``.
TOML, every key optional::

    inventory = "/etc/irm/inventory"          # -i / IRM_INVENTORY
    journal = "/var/lib/irm/journal.db"       # --journal / IRM_JOURNAL
    operator = "soc-oncall"                   # --operator / IRM_OPERATOR
    confirm_timeout = 60                      # --confirm-timeout (seconds, 5 to 3600)
    soak = "2m"                               # recover --soak
    quiet_window = "30s"                      # contain and recover --quiet-window
    sources = ["suricata:/var/log/suricata/eve.json"]   # --source, on every command that reads them

Precedence, the same for every setting: the command-line option, then the environment variable, then the
file, then irm's default. An unknown key or a value of the wrong type is an error naming the file and line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError
from orchestrator.core.safefile import read_text_bounded

SEARCH = ("./irm.toml", "~/.config/irm/irm.toml", "/etc/irm/irm.toml")


@dataclass(frozen=True)
class Setting:
    key: str  # in irm.toml
    param: str  # the commands' parameter name
    env: str | None  # its environment variable, if any
    kind: type
    default: str  # irm's default, as `config show` prints it


SETTINGS = (
    Setting("inventory", "inventory", "IRM_INVENTORY", str, "inventories/lab"),
    Setting("journal", "journal", "IRM_JOURNAL", str, "/var/lib/irm/journal.db (IRM_STATE_DIR)"),
    Setting("operator", "operator", "IRM_OPERATOR", str, "the login name"),
    Setting("confirm_timeout", "confirm_timeout", None, int, "60"),
    Setting("soak", "soak", None, str, "60s"),
    Setting("quiet_window", "quiet_window", None, str, "30s (contain), 60s (recover)"),
    Setting("sources", "source", None, list, "the inventory's irm_detection_sources"),
)
BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    path: Path | None  # the file read (None: none found)
    values: dict[str, Any]


def find() -> Path | None:
    given = os.environ.get("IRM_CONFIG")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise UserError(f"IRM_CONFIG names {path}, which is not a file")
        return path
    for candidate in SEARCH:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    return None


def _line(text: str, key: str) -> int:
    found = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
    return text[:found.start()].count("\n") + 1 if found else 1


def load() -> Config:
    path = find()
    if path is None:
        return Config(None, {})
    text = read_text_bounded(path, "configuration", 64 * 1024, "a TOML file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    for key, value in data.items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise UserError(f"{path}:{_line(text, key)}: unknown key '{key}' (known: {', '.join(BY_KEY)})")
        ok = isinstance(value, setting.kind) and not isinstance(value, bool)
        if ok and setting.kind is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            raise UserError(f"{path}:{_line(text, key)}: '{key}' must be "
                            f"{'a list of strings' if setting.kind is list else setting.kind.__name__}")
    return Config(path, data)


def default_map(config: Config, command: Any) -> dict[str, Any]:
    """Click's ``default_map`` for the command tree: each command's parameters that the file sets (click
    uses it after the option and the environment variable, before the parameter's own default)."""
    out: dict[str, Any] = {}
    params = {s.param: config.values[s.key] for s in SETTINGS if s.key in config.values}
    for p in getattr(command, "params", []):
        if p.name in params:
            out[p.name] = params[p.name]
    for name, sub in getattr(command, "commands", {}).items():
        nested = default_map(config, sub)
        if nested:
            out[name] = nested
    return out


def effective(config: Config) -> list[tuple[str, str, str]]:
    """(key, value, where it comes from) of every setting, as ``irm config show`` prints them."""
    rows = []
    for s in SETTINGS:
        if s.env and os.environ.get(s.env):
            rows.append((s.key, os.environ[s.env], f"environment {s.env}"))
        elif s.key in config.values:
            value = config.values[s.key]
            rows.append((s.key, ", ".join(value) if isinstance(value, list) else str(value), str(config.path)))
        else:
            rows.append((s.key, s.default, "default"))
    return rows
