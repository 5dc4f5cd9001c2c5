"""irm status: where every area stands, from the journal (and, with --verify, from the hosts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.app import app, console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    IncidentOpt,
    InventoryOpt,
    JournalOpt,
    JsonOpt,
    existing_journal,
    load,
    no_incident_yet,
)
from orchestrator.core.errors import Drift, HostsUnreached
from orchestrator.core.journal import DEFAULT_PATH, Journal


@app.command("status")
def status(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    incident_id: IncidentOpt = None,
    as_json: JsonOpt = False,
    verify: Annotated[bool, typer.Option("--verify", help="Read every boundary's and host's live ruleset and "
                                         "compare it with the journal; exit 1 on drift, 6 if some "
                                         "could not be read.")] = False,
) -> None:
    """Per-area and per-sub-area posture, each stage's state, host failures and infections.

    Example: irm status --verify
    """
    from orchestrator.core import status as st

    if no_incident_yet(journal, '{"incident": null}' if as_json else None):
        return
    inv = load(inventory, snapshot=not verify)
    with Journal(existing_journal(journal)) as j:
        data = st.gather(inv, j, incident_id)
        checked = st.verify(inv, inventory, j, incident_id) if verify else None
    if as_json:
        print(json.dumps({**data, **({"verify": checked} if checked is not None else {})}, indent=1, default=str))
    else:
        st.render(console, data)
        if checked is not None:
            st.render_verify(console, checked)
    if checked is not None and checked["drift"]:
        raise Drift()
    if checked is not None and checked["unreachable"]:
        raise HostsUnreached()
