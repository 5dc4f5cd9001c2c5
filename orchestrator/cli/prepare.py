"""irm prepare: one line per readiness check (ok, or what is wrong and how to fix it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from orchestrator.cli.app import app, console
from orchestrator.cli.options import DEFAULT_INVENTORY, InventoryOpt, JournalOpt, JsonOpt, UntrustedOpt, load
from orchestrator.core.errors import CheckFailed
from orchestrator.core.journal import DEFAULT_PATH
from orchestrator.core.safefile import write_files

if TYPE_CHECKING:
    from orchestrator.core.inventory import Inventory

CHECKSUMS = "irm-checksums.json"


@app.command("prepare")
def prepare(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    plan: Annotated[list[Path] | None, typer.Option("--plan", help="A remediation plan to check (repeat).")] = None,
    checksums: Annotated[Path, typer.Option("--checksums", envvar="IRM_CHECKSUMS",
                                            help="Where irm's recorded checksums are (keep a copy offline).")]
    = Path(CHECKSUMS),
    record: Annotated[bool, typer.Option("--record", help="Record the checksums of irm's own files (on a "
                                         "known-good installation), then check.")] = False,
    drift: Annotated[bool, typer.Option("--drift", help="Also compare what the boundaries' neighbour tables "
                                        "see with the inventory.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Prove the response is ready: the inventory, every host's management connection, each boundary's
    commit-confirmed round trip (changing nothing), the detection sources, the journal, the plans, the
    crisis-cell directory, the notification channel and irm's own files. Exit 1 when any check fails.

    Example: irm prepare -i inventories/lab --drift
    """
    from orchestrator.preparation import prepare as prep

    inv = load(inventory)
    if record:
        count = prep.record(checksums)
        if not as_json:
            console.print(f"recorded the checksums of {count} files of irm in {checksums}")
    checks = prep.prepare(inv, inventory, journal, plan or [], checksums)
    if drift:
        from orchestrator.preparation.drift import drift_checks

        checks += drift_checks(inv, inventory)
    if as_json:
        print(json.dumps({"ok": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]}, indent=1))
    else:
        for c in checks:
            console.print(Text.assemble(("ok    " if c.ok else "FAIL  ", "green" if c.ok else "bold red"),
                                        (c.name, "bold"), ": ", c.detail, (f" -> {c.fix}" if c.fix and not c.ok
                                                                            else "")))
        failed = [c for c in checks if not c.ok]
        console.print(f"{len(checks) - len(failed)} of {len(checks)} checks ok"
                      + (f"; failing: {', '.join(c.name for c in failed)}" if failed else ""),
                      style="bold red" if failed else "bold green")
    if not all(c.ok for c in checks):
        raise CheckFailed()


@app.command("map")
def arch_map(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    out: Annotated[Path | None, typer.Option("--out", help="Write map.md and map.svg into this directory "
                                             "(default: print the Markdown).")] = None,
    untrusted: UntrustedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The architecture from the inventory: areas, sub-areas, mobile segments, boundaries, critical flows
    and their owners, as Markdown and SVG.

    Example: irm map -i inventories/lab --out irm-map
    """
    from orchestrator.core.inventory import untrusted as untrusted_inventory
    from orchestrator.preparation import archmap

    if untrusted:
        untrusted_inventory.check(inventory)
    inv = load(inventory)
    if as_json:  # {boundaries: {edge, core, gateways}, areas: [{name, gateway, segments, critical_flows}]}
        print(json.dumps(_map_json(inv), indent=1))
        return
    text = f"# Architecture of {inv.source}\n\n![architecture](map.svg)\n\n" + archmap.markdown(inv)
    if out is None:
        print(archmap.markdown(inv), end="")
        return
    write_files(out, {"map.md": text, "map.svg": archmap.svg(inv)}, "map")
    console.print(f"wrote {out / 'map.md'} and {out / 'map.svg'}")


def _map_json(inv: Inventory) -> dict[str, Any]:
    def boundary(h: Any) -> dict[str, Any] | None:
        return None if h is None else {"name": h.name, "address": str(h.address), "kind": h.boundary_kind}
    return {
        "boundaries": {"edge": boundary(inv.edge), "core": boundary(inv.core),
                       "gateways": [boundary(g) for g in inv.gateways]},
        "areas": [{"name": a.name, "gateway": a.gateway,
                   "segments": [{"name": s.name, "kind": s.kind, "prefix": str(s.prefix), "hosts": list(s.hosts)}
                                for s in a.segments],
                   "critical_flows": [{"name": f.name, "owner": f.owner, "protocol": f.protocol, "ports": f.ports,
                                       "validated_by": f.validated_by} for f in a.critical_flows]}
                  for a in inv.areas.values()],
    }
