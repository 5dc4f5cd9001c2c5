"""Options shared by several commands, and the two loaders every command uses."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.core.errors import UserError

if TYPE_CHECKING:
    from orchestrator.core import runner
    from orchestrator.core.inventory import Inventory

DEFAULT_INVENTORY = "inventories/lab"
InventoryOpt = Annotated[
    Path,
    typer.Option("--inventory", "-i", envvar="IRM_INVENTORY", help="Ansible inventory (file or directory)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
JournalOpt = Annotated[Path, typer.Option("--journal", envvar="IRM_JOURNAL", help="The journal (SQLite file).")]
OperatorOpt = Annotated[str | None, typer.Option("--operator", envvar="IRM_OPERATOR",
                                                 help="Who runs this (journaled); default: the login name.")]
ConfirmTimeoutOpt = Annotated[int, typer.Option(help="Dead-man timer: seconds before an unconfirmed change is "
                                                    "rolled back.", min=5, max=3600)]
IncidentOpt = Annotated[int | None, typer.Option("--incident", help="Incident id (default: the only open one).",
                                                 min=1, max=2**31 - 1)]
SourceOpt = Annotated[list[str] | None, typer.Option(
    "--source", help="Detection source KIND:PATH (suricata, wazuh, defender) or lab_av; repeat for several. "
    "Default: the inventory's irm_detection_sources, else the lab AV logs.")]
FromSocOpt = Annotated[bool, typer.Option(
    "--from-soc", help="Run every area's plays from the SOC, not its execution node (when a node is down and "
    "the SOC has a route to the area); management is then planned and proven from the SOC.")]
IosPlayOpt = Annotated[bool, typer.Option(
    "--ios-play", help="Change Cisco IOS boundaries by a play (the collection's irm_ios_acl module over "
    "network_cli), not over irm's own netmiko session held for the run (the IOS direct path).")]


@contextlib.contextmanager
def stage_runner(inv: Inventory, inventory: Path, ios_play: bool = False,
                 warm: bool = False) -> Iterator[runner.PlaybookRunner]:
    """The runner a command's stages go through: the plays, with the IOS devices of every boundary stage
    changed over held netmiko sessions (``core.ios_direct``) unless ``ios_play``; with ``warm``, the
    Linux boundaries and area hosts ``hold_sessions`` names changed over SSH without a play once
    prepared (``core.warm``). Sessions and connections are closed when the command ends."""
    from orchestrator.containment.table import CONTAINMENT
    from orchestrator.core import runner as runner_
    from orchestrator.core import warm_resolve
    from orchestrator.core.ios_direct import IosDirect
    from orchestrator.core.warm import WarmPath

    with contextlib.ExitStack() as stack:
        run: runner.PlaybookRunner = runner_.run_playbook
        if warm:
            addresses = {h.name: str(h.address) for h in inv.hosts.values()}  # the inventory as this run loaded it
            run = stack.enter_context(WarmPath(
                inventory, [], frozenset(p.playbook for p in CONTAINMENT), run, held=[],
                media={p.playbook: "present" for p in CONTAINMENT if p.removable_storage},
                resolve=functools.partial(warm_resolve.resolve, addresses=addresses)))
        if not ios_play and any(h.boundary_kind == "cisco_ios" for h in inv.hosts.values()):
            run = stack.enter_context(IosDirect(inv, inventory, boundary_playbooks(), run))
        yield run


def hold_sessions(run: runner.PlaybookRunner, inv: Inventory, boundaries: list[str],
                  hosts: list[str] | None = None) -> None:
    """Get ahead of the stages, in the background: the IOS direct path logs in to the IOS boundaries; once
    the first stage has run, the warm path resolves the Linux boundaries' and ``hosts``' options and opens
    a master connection to each boundary (the host-level stage waits for it; a boundary stage meanwhile
    runs as its play). When every one of those hosts' options was resolved ahead and kept
    (``warm_resolve.cached``: ``irm prepare`` does it), they are taken at once and the first stage goes
    warm too. Nothing for another runner."""
    from orchestrator.containment.table import CONTAINMENT
    from orchestrator.core import warm_resolve
    from orchestrator.core.ios_direct import IosDirect
    from orchestrator.core.warm import WarmPath

    if isinstance(run, IosDirect):
        run.hold(boundaries, background=True)
        run = run.fallback
    if isinstance(run, WarmPath):
        linux = [h for h in dict.fromkeys([*boundaries, *(hosts or [])])
                 if inv.hosts[h].boundary_kind != "cisco_ios" and inv.hosts[h].os == "linux"]
        kept = warm_resolve.cached(run.inventory, linux, {h: str(inv.hosts[h].address) for h in linux})
        run.start(linux, held=[b for b in boundaries if b in linux],
                  wait_for=frozenset(p.playbook for p in CONTAINMENT if p.host_level), defer=True, resolved=kept)


def boundary_playbooks() -> frozenset[str]:
    """The plays of the containment stages and recovery steps that change boundaries."""
    from orchestrator.containment.table import CONTAINMENT
    from orchestrator.recovery.table import RECOVERY

    return frozenset(p.playbook for p in (*CONTAINMENT, *RECOVERY) if not p.host_level)


def load(path: Path, snapshot: bool = False, from_soc: bool = False) -> Inventory:
    """The inventory, loaded through Ansible and validated (``InventoryError`` otherwise). Views that
    only read the journal pass ``snapshot``: an unchanged static inventory is then read from its
    snapshot, without importing Ansible (``inventory.snapshot``)."""
    from orchestrator.core.inventory.load import load_inventory

    inv = load_inventory(path, snapshot=snapshot)
    return inv.from_soc() if from_soc else inv


UntrustedOpt = Annotated[bool, typer.Option(
    "--untrusted", help="The inventory comes from someone else: refuse it, before Ansible reads it, when it "
    "would run anything (an executable file, an inventory plugin, a template with lookup, query or pipe).")]


def _inventory_for_completion(ctx: typer.Context) -> Inventory | None:
    """The inventory the command line names so far (else IRM_INVENTORY, irm.toml, the default), loaded
    from its snapshot when unchanged; None when it cannot be loaded (completion then offers nothing)."""
    from orchestrator.core import config
    from orchestrator.core.inventory.load import load_inventory

    given = ctx.params.get("inventory")
    path = given or os.environ.get("IRM_INVENTORY") or config.load().values.get("inventory") or DEFAULT_INVENTORY
    try:
        return load_inventory(Path(path), snapshot=True)
    except Exception:
        return None


def complete_area(ctx: typer.Context, incomplete: str) -> list[str]:
    inv = _inventory_for_completion(ctx)
    return sorted(a for a in inv.areas if a.startswith(incomplete)) if inv else []


def complete_host(ctx: typer.Context, incomplete: str) -> list[str]:
    inv = _inventory_for_completion(ctx)
    return sorted(h for h in inv.hosts if h.startswith(incomplete)) if inv else []


def no_incident_yet(journal: Path, as_json: str | None = None) -> bool:
    """Before the first incident there is no journal: a view says so and exits 0 (``as_json``: what it
    prints instead, its empty document)."""
    if journal.exists() or journal.is_symlink():
        return False
    if as_json is not None:
        print(as_json)
    else:
        from orchestrator.cli.app import console

        console.print(f"no incident yet (no journal at {journal}; 'irm incident open' starts one)")
    return True


def existing_journal(journal: Path) -> Path:
    """Read-only commands never create a journal: a missing one is an operator mistake."""
    if not journal.exists():
        raise UserError(f"no journal at {journal} (open an incident first, or pass --journal / IRM_JOURNAL)")
    return journal


def source_specs(values: list[str] | None) -> list[Any]:
    """The ``--source`` values as source specs (``UserError`` naming a bad one)."""
    from orchestrator.identification.sources import parse_source

    return [parse_source(v) for v in values or []]


def chosen_areas(inv: Inventory, journal: Any, areas: list[str] | None, detected: bool, incident_id: int | None,
                 specs: list[Any], command: str) -> list[str]:
    """The areas a command acts on: each ``--area`` (checked against the inventory) then, with
    ``--detected``, every other area with detections in its sources since the sub-area loop's own
    look-back before the incident was opened, in the inventory's order."""
    if not areas and not detected:
        raise UserError(f"irm {command}: give --area AREA (repeat for several) or --detected")
    names = list(dict.fromkeys(areas or []))
    for name in names:
        inv.area(name)
    if detected:
        from orchestrator.core.detection import watch_start
        from orchestrator.identification.sources import Sources

        incident = journal.incidents.open_for(incident_id)
        seen = {d.area for d in Sources(inv, specs=specs).detections(watch_start(incident.opened_at))}
        names += [n for n in inv.areas if n in seen and n not in names]
    return names
