"""irm config show: each effective setting and where it comes from."""

from __future__ import annotations

import json

from rich.table import Table

from orchestrator.cli.app import config_app, console
from orchestrator.cli.options import JsonOpt


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print each setting irm.toml can hold, its effective value and where it comes from (environment,
    the configuration file, or irm's default); a command-line option overrides all of them.

    Example: irm config show --json
    """
    from orchestrator.core import config

    cfg = config.load()
    rows = config.effective(cfg)
    if as_json:
        print(json.dumps({"file": str(cfg.path) if cfg.path else None,
                          "settings": [{"key": k, "value": v, "from": w} for k, v, w in rows]}, indent=1))
        return
    table = Table(title=f"irm settings (file: {cfg.path or 'none found'})")
    for col in ("setting", "value", "from"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
