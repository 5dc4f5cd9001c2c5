"""irm lab ...: build, inspect, infect and tear down the namespace lab."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from orchestrator.cli.app import console, err_console, lab_app
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    InventoryOpt,
    JsonOpt,
    complete_host,
    load,
)
from orchestrator.core.errors import CheckFailed


@lab_app.callback()
def _lab_extra() -> None:
    """The namespace lab: build it, infect it, watch it, tear it down (needs the lab extra)."""
    import importlib

    from orchestrator.core.errors import UserError

    missing = []
    for module in ("aiosmtpd", "paramiko"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UserError(f"irm lab needs the lab's dependencies ({', '.join(missing)} missing): "
                        "pip install 'irm-orchestrator[lab]'")


@lab_app.command("up")
def lab_up(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Build the lab described by the inventory: namespaces, links, nftables, sshd, services.

    Example: irm lab up -i inventories/lab
    """
    from orchestrator.lab import builder

    inv = load(inventory)
    started = time.monotonic()
    plan = builder.up(inv, step=lambda s: console.print(Text.assemble(("lab up:", "dim"), f" {s}")))
    console.print(Text.assemble("lab ", (plan.lab, "bold"),
                                f" is up: {len(plan.namespaces)} hosts in {time.monotonic() - started:.1f}s"))


@lab_app.command("down")
def lab_down(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Remove every namespace, veth, process and file the lab made (also after a crashed 'up').

    Example: irm lab down -i inventories/lab
    """
    from orchestrator.lab import builder

    report = builder.down(load(inventory))
    for warning in report.warnings:
        err_console.print(Text.assemble(("warning:", "yellow"), f" {warning}"))
    console.print(f"lab down: {len(report.namespaces)} namespaces, {len(report.processes)} processes, "
                  f"{len(report.routes)} SOC route(s) to node-only areas, "
                  f"state dir {'removed' if report.state_dir_removed else 'absent'}")


@lab_app.command("status")
def lab_status(inventory: InventoryOpt = Path(DEFAULT_INVENTORY), as_json: JsonOpt = False) -> None:
    """Show the lab's topology with each host's namespace, sshd, services and infection.

    Example: irm lab status --json
    """
    from orchestrator.cli import views
    from orchestrator.lab import builder

    inv = load(inventory)
    st = builder.status(inv)
    if as_json:
        data = {
            "lab": st.lab, "up": st.up, "state_dir": st.state_dir,
            "hosts": {n: {"kind": h.host.kind, "address": str(h.host.address), "segment": h.host.segment,
                          "namespace": h.namespace, "sshd": h.sshd, "services": h.agent,
                          "infected_since": h.infection["since"] if h.infection else None}
                      for n, h in st.hosts.items()},
        }
        print(json.dumps(data, indent=1))
        return
    console.print(views.topology_tree(inv, st))


@lab_app.command("infect")
def lab_infect(host: Annotated[str, typer.Argument(autocompletion=complete_host, help="Area host to seed.")],
               inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Seed the lab worm on one host.

    Example: irm lab infect x-ws11
    """
    from orchestrator.lab import builder

    rec = builder.infect(load(inventory), host)
    console.print(f"{host}: infected at {rec['since']} (seed); its worm is spreading")


@lab_app.command("fix-by-hand")
def lab_fix_by_hand(host: Annotated[str, typer.Argument(autocompletion=complete_host,
                                                        help="Area host a technician fixes at the console.")],
                    inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Play the technician at one host's console: stop the worm, remove it, install the fix.

    Example: irm lab fix-by-hand x-ws13
    """
    from orchestrator.lab import builder

    console.print(f"{host}: {builder.fix_by_hand(load(inventory), host)}")


@lab_app.command("reboot")
def lab_reboot(host: Annotated[str, typer.Argument(autocompletion=complete_host, help="Lab host to reboot.")],
               lose_config: Annotated[bool, typer.Option("--lose-config", help="Boot without the saved irm table "
                                                         "(a device that lost its saved configuration).")] = False,
               inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Simulate a reboot: kill the namespace's processes, flush its ruleset, load what a boot loads, restart sshd
    and services.

    Example: irm lab reboot gw-x
    """
    from orchestrator.lab import builder

    console.print(f"{host}: {builder.reboot(load(inventory), host, load_saved=not lose_config)}",
                  markup=False, highlight=False)


@lab_app.command("infections")
def lab_infections(inventory: InventoryOpt = Path(DEFAULT_INVENTORY), as_json: JsonOpt = False) -> None:
    """List infected hosts: since when and from whom.

    Example: irm lab infections --json
    """
    from orchestrator.cli import views
    from orchestrator.lab import builder

    found = builder.infections(load(inventory))
    if as_json:
        print(json.dumps([i.__dict__ for i in found], indent=1))
        return
    console.print(views.infections_table(found))


@lab_app.command("watch")
def lab_watch(
    seconds: Annotated[float, typer.Option(help="How long to watch.")] = 20.0,
    until_all: Annotated[bool, typer.Option(help="Stop early once every vulnerable host is infected.")] = True,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Watch the spread live: who infected whom, when.

    Example: irm lab watch
    """
    from orchestrator.cli import views
    from orchestrator.lab import builder

    inv = load(inventory)
    builder.require_up(inv)
    vulnerable = sum(1 for h in inv.hosts.values() if h.kind == "area" and h.vulnerable)
    found = builder.infections(inv)
    start = datetime.fromisoformat(found[0].since) if found else datetime.now(UTC)
    deadline = time.monotonic() + seconds
    with Live(views.infections_table(found, start), console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            found = builder.infections(inv)
            live.update(views.infections_table(found, start))
            if until_all and len(found) >= vulnerable:
                break
            time.sleep(0.25)


@lab_app.command("matrix")
def lab_matrix(inventory: InventoryOpt = Path(DEFAULT_INVENTORY), as_json: JsonOpt = False) -> None:
    """Probe the baseline connectivity matrix with real TCP connections.

    Example: irm lab matrix --json
    """
    from orchestrator.cli import views
    from orchestrator.lab import builder, traffic

    inv = load(inventory)
    builder.require_up(inv)
    results = traffic.run_probes(inv, traffic.baseline_probes(inv))
    if as_json:
        print(json.dumps([{**r.probe.model_dump(), "outcome": r.outcome} for r in results], indent=1))
    else:
        console.print(views.probe_summary(results))
    closed = [r for r in results if not r.open]
    if closed:
        raise CheckFailed(f"{len(closed)} of {len(results)} baseline paths are closed")


@lab_app.command("reach")
def lab_reach(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Reach every managed host with Ansible over SSH from the SOC, or from the execution node that
    manages it (playbooks/reach.yml).

    Example: irm lab reach -i inventories/lab
    """
    from orchestrator.cli.live import LiveProgress
    from orchestrator.core import routing, stream

    inv = load(inventory)
    with LiveProgress(console, "lab reach") as progress:
        result = routing.route(inv)("reach", inventory, events=stream.EventStream([progress]),
                                    extravars={"irm_targets": ",".join(h.name for h in inv.managed_hosts)})
    missing = sorted({h.name for h in inv.managed_hosts} - set(result.hosts))
    bad = result.failed_hosts + missing
    console.print(f"{len(result.hosts) - len(result.failed_hosts)} of {len(inv.managed_hosts)} hosts answered over SSH")
    if bad:
        for name in bad:
            hr = result.hosts.get(name)
            err_console.print(f"{name}: {'; '.join(hr.failures) if hr else 'no result'}")
        raise CheckFailed()
