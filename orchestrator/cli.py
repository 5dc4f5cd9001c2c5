"""The ``irm`` command: typer options -> one library call -> printing and an exit code.

Operator mistakes (``UserError``) print one line per problem and exit non-zero, never a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from orchestrator import __version__
from orchestrator.errors import INTERNAL_ERROR, IrmError, UserError
from orchestrator.inventory import Inventory

# Tracebacks never show local variables: they may hold inventory secrets.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="irm: worm infection response orchestrator.")
lab_app = typer.Typer(no_args_is_help=True, help="Build, inspect and tear down the namespace lab.")
app.add_typer(lab_app, name="lab")

# Markup off: worm names, notes, operator names and Ansible messages are printed as the characters they
# are (a "[/]" in a note must neither crash a command nor vanish); irm's own styling uses Text styles.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

DEFAULT_INVENTORY = "inventories/lab"
InventoryOpt = Annotated[
    Path,
    typer.Option("--inventory", "-i", envvar="IRM_INVENTORY", help="Ansible inventory (file or directory)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _inventory(path: Path) -> Inventory:
    from orchestrator.inventory_loader import load_inventory

    return load_inventory(path)


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        console.print(f"irm {__version__}")
        raise typer.Exit()


@app.command("validate")
def validate(
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    plan: Annotated[list[Path] | None, typer.Option("--plan", help="A remediation plan to check too (repeat).")] = None,
    incident_file: Annotated[list[Path] | None, typer.Option(
        "--incident", help="An incident file to check too, and whose vectors the critical flows are checked "
        "against (repeat).")] = None,
    journal: Annotated[Path | None, typer.Option(
        "--journal", envvar="IRM_JOURNAL", help="Check critical flows against this journal's open incident "
        "(default: the machine's journal, when it exists).")] = None,
) -> None:
    """Check everything a later command would refuse: the schema, the chokepoint groups, the lab's
    address space, critical flows against the incident's vectors, the management path under every
    containment, and the plan and incident files given (every problem, one line each)."""
    from orchestrator import validation
    from orchestrator.journal import DEFAULT_PATH, Journal

    problems, vectors = validation.file_problems(plan or [], incident_file or [])
    against = [str(f) for f in incident_file or []]
    path = journal or Path(DEFAULT_PATH)
    if journal is not None and not journal.exists():
        raise UserError(f"no journal at {journal} (validate reads it, never creates it)")
    if path.exists():
        with Journal(path) as j:
            open_ = [i for i in j.incidents() if i.status == "open"]
        for inc in open_:
            vectors += inc.spec.vectors
            against.append(f"incident {inc.id} of {path}")
    try:
        inv = _inventory(inventory)
    except UserError as exc:
        raise UserError(*exc.problems, *problems) from None
    problems = validation.inventory_problems(inv, list(dict.fromkeys(vectors))) + problems
    if problems:
        raise UserError(*problems)
    vectors_note = f"; critical flows checked against {', '.join(against)}" if against else ""
    console.print(f"{inventory}: valid ({len(inv.areas)} areas, {len(inv.segments)} segments, "
                  f"{len(inv.managed_hosts)} managed hosts){vectors_note}")
    for f in plan or []:
        console.print(f"{f}: valid plan")
    for f in incident_file or []:
        console.print(f"{f}: valid incident file")


@lab_app.command("up")
def lab_up(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Build the lab described by the inventory: namespaces, links, nftables, sshd, services."""
    from orchestrator.lab import builder

    inv = _inventory(inventory)
    started = time.monotonic()
    plan = builder.up(inv, step=lambda s: console.print(Text.assemble(("lab up:", "dim"), f" {s}")))
    console.print(Text.assemble("lab ", (plan.lab, "bold"),
                                f" is up: {len(plan.namespaces)} hosts in {time.monotonic() - started:.1f}s"))


@lab_app.command("down")
def lab_down(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Remove every namespace, veth, process and file the lab made (also after a crashed 'up')."""
    from orchestrator.lab import builder

    report = builder.down(_inventory(inventory))
    for warning in report.warnings:
        err_console.print(Text.assemble(("warning:", "yellow"), f" {warning}"))
    console.print(f"lab down: {len(report.namespaces)} namespaces, {len(report.processes)} processes, "
                  f"state dir {'removed' if report.state_dir_removed else 'absent'}")


@lab_app.command("status")
def lab_status(inventory: InventoryOpt = Path(DEFAULT_INVENTORY), as_json: JsonOpt = False) -> None:
    """Show the lab's topology with each host's namespace, sshd, services and infection."""
    from orchestrator import views
    from orchestrator.lab import builder

    inv = _inventory(inventory)
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
def lab_infect(host: Annotated[str, typer.Argument(help="Area host to seed.")],
               inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Seed the lab worm on one host."""
    from orchestrator.lab import builder

    rec = builder.infect(_inventory(inventory), host)
    console.print(f"{host}: infected at {rec['since']} (seed); its worm is spreading")


@lab_app.command("fix-by-hand")
def lab_fix_by_hand(host: Annotated[str, typer.Argument(help="Area host a technician fixes at the console.")],
                    inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Play the technician at one host's console: stop the worm, remove it, install the fix."""
    from orchestrator.lab import builder

    console.print(f"{host}: {builder.fix_by_hand(_inventory(inventory), host)}")


@lab_app.command("reboot")
def lab_reboot(host: Annotated[str, typer.Argument(help="Lab host to reboot.")],
               lose_config: Annotated[bool, typer.Option("--lose-config", help="Boot without the saved irm table "
                                                         "(a device that lost its saved configuration).")] = False,
               inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Simulate a reboot: kill the namespace's processes, flush its ruleset, load what a boot loads, restart sshd
    and services."""
    from orchestrator.lab import builder

    console.print(f"{host}: {builder.reboot(_inventory(inventory), host, load_saved=not lose_config)}",
                  markup=False, highlight=False)


@lab_app.command("infections")
def lab_infections(inventory: InventoryOpt = Path(DEFAULT_INVENTORY), as_json: JsonOpt = False) -> None:
    """List infected hosts: since when and from whom."""
    from orchestrator import views
    from orchestrator.lab import builder

    found = builder.infections(_inventory(inventory))
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
    """Watch the spread live: who infected whom, when."""
    from orchestrator import views
    from orchestrator.lab import builder

    inv = _inventory(inventory)
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
    """Probe the baseline connectivity matrix with real TCP connections."""
    from orchestrator import views
    from orchestrator.lab import builder, traffic

    inv = _inventory(inventory)
    builder.require_up(inv)
    results = traffic.run_probes(inv, traffic.baseline_probes(inv))
    if as_json:
        print(json.dumps([{**r.probe.model_dump(), "outcome": r.outcome} for r in results], indent=1))
    else:
        console.print(views.probe_summary(results))
    closed = [r for r in results if not r.open]
    if closed:
        err_console.print(f"{len(closed)} of {len(results)} baseline paths are closed")
        raise typer.Exit(1)


@lab_app.command("reach")
def lab_reach(inventory: InventoryOpt = Path(DEFAULT_INVENTORY)) -> None:
    """Reach every managed host with Ansible over SSH from the SOC (playbooks/reach.yml)."""
    from orchestrator import runner
    from orchestrator.live import LiveProgress

    inv = _inventory(inventory)
    with LiveProgress(console, "lab reach") as progress:
        result = runner.run_playbook("reach", inventory, observer=progress)
    missing = sorted({h.name for h in inv.managed_hosts} - set(result.hosts))
    bad = result.failed_hosts + missing
    console.print(f"{len(result.hosts) - len(result.failed_hosts)} of {len(inv.managed_hosts)} hosts answered over SSH")
    if bad:
        for name in bad:
            hr = result.hosts.get(name)
            err_console.print(f"{name}: {'; '.join(hr.failures) if hr else 'no result'}")
        raise typer.Exit(1)


def main() -> None:
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C or end of input at a prompt: declined, nothing done
        _error("irm: aborted at the prompt: nothing was done")
        sys.exit(1)
    except UserError as exc:
        for problem in exc.problems:
            _error(f"irm: error: {problem}")
        sys.exit(exc.exit_code)
    except IrmError as exc:  # ansible could not run at all: the stage was journaled failed
        _error(f"irm: error: {exc}")
        sys.exit(4)
    except sqlite3.Error as exc:  # only the journal speaks SQLite: disk full, file removed, locked for long
        _error(f"irm: error: the journal cannot be used: {exc}")
        sys.exit(3)
    except KeyboardInterrupt:
        _error("irm: interrupted")
        sys.exit(130)
    except Exception as exc:  # a defect in irm: one line here, the traceback in a file for the bug report
        if _is_usage_error(exc):  # the command line itself: one line, like every other refusal
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "irm"
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                console.print(ctx.get_help(), markup=False, highlight=False)
                sys.exit(2)
            message = exc.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
            _error(f"irm: error: {where}: {message} (see '{where} --help')")
            sys.exit(2)
        if os.environ.get("IRM_DEBUG"):
            raise
        where = _crash_file(exc)
        _error(f"irm: internal error (a defect in irm, not in your input): {type(exc).__name__}: "
               f"{_one_line(str(exc))}; details for the bug report: {where}")
        sys.exit(INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's UsageError (typer vendors its own click, so matched by class name and module)."""
    return any(c.__name__ == "UsageError" and c.__module__.endswith("click.exceptions") for c in type(exc).__mro__)


def _error(line: str) -> None:
    from orchestrator.safetext import one_line

    err_console.print(one_line(line), markup=False, highlight=False, soft_wrap=True)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _crash_file(exc: BaseException) -> str:
    """The traceback (no local variables: they may hold secrets) in a 0600 file under the state
    directory, or the temporary directory when that is not writable."""
    import tempfile
    import traceback

    from orchestrator.journal import DEFAULT_DIR

    text = f"irm {__version__}\nargv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(exc))
    name = f"irm-crash-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
    for directory in (DEFAULT_DIR, Path(tempfile.gettempdir())):
        try:
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return str(directory / name)
    return "(could not be written; run again with IRM_DEBUG=1 for the traceback)"


from orchestrator import (  # noqa: E402, F401  (they register their commands on app)
    cli_incident,
    cli_recover,
    cli_remediate,
    cli_report,
)
