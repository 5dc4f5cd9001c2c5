"""irm watch (automatic containment under a signed policy), irm watch pause/resume/install, irm policy sign."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import notice
from orchestrator.cli.app import app, console
from orchestrator.cli.options import (
    DEFAULT_INVENTORY,
    ConfirmTimeoutOpt,
    InventoryOpt,
    JournalOpt,
    OperatorOpt,
    SourceOpt,
    load,
    source_specs,
)
from orchestrator.core.errors import UserError
from orchestrator.core.journal import DEFAULT_PATH, Journal, default_operator
from orchestrator.core.safetext import check_text

watch_app = typer.Typer(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
policy_app = typer.Typer(context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True,
                         help="The containment policy irm watch executes: sign it, check it.")
app.add_typer(watch_app, name="watch")
app.add_typer(policy_app, name="policy")

PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="The signed containment policy (YAML).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (journaled).")]


def _printer(event: Any) -> None:
    from orchestrator.core import stream

    if isinstance(event, stream.Notice):
        console.print(f"{time.strftime('%H:%M:%S')} {event.text}", markup=False, highlight=False)
    elif isinstance(event, stream.StageEnded):
        console.print(f"{time.strftime('%H:%M:%S')} {event.label}: {'done' if event.ok else 'FAILED'}"
                      f"{': ' + event.detail if event.detail else ''}", markup=False, highlight=False)


@watch_app.callback()
def watch(
    ctx: typer.Context,
    policy: PolicyOpt = None,
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    source: SourceOpt = None,
    operator: OperatorOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Journal and print what it would contain; change "
                                          "nothing.")] = False,
    duration: Annotated[float | None, typer.Option("--for", help="Stop after this many seconds (default: until "
                                                   "SIGTERM or Ctrl-C).", min=0.1)] = None,
    confirm_timeout: ConfirmTimeoutOpt = 60,
    keep_warm: Annotated[float, typer.Option("--keep-warm", help="Seconds between two checks of the edge's and the "
                                             "policy's gateways' connections, reopening those that closed and "
                                             "saying when one does not answer (0: never).", min=0)] = 20.0,
    warm: Annotated[bool, typer.Option("--warm/--no-warm", help="Cut the edge and the gateways over SSH "
                                       "connections held open (no play started for their stages); --no-warm "
                                       "runs every stage as a play.")] = True,
    sensor_interval: Annotated[float, typer.Option("--sensor-interval", help="Seconds between two live readings of "
                                                   "the drop counters of the boundaries irm holds, a detection "
                                                   "source like the others (0: never).", min=0)] = 10.0,
) -> None:
    """Follow every detection source and, when the policy's trigger fires for an area it allows, cut that
    area at once with the stages of 'irm contain' up to the policy's last automatic stage. Refuses a
    policy that is unsigned, expired or changed since it was signed. Never remediates or recovers.

    Example: irm watch --policy inventories/lab/containment-policy.yml -i inventories/lab
    """
    if ctx.invoked_subcommand is not None:
        return
    if policy is None:
        raise UserError("irm watch: give --policy FILE (a containment policy signed with 'irm policy sign')")
    from orchestrator.core.events import EventKind
    from orchestrator.identification.sources import Sources
    from orchestrator.watch import policy as pol
    from orchestrator.watch.watcher import Watcher, WatchSettings

    inv = load(inventory)
    specs = source_specs(source)
    chosen, signers, digest = pol.verified(policy, inv)
    by = default_operator(operator)
    with Journal(journal) as j:
        w = Watcher(inv, j, chosen, digest, signers, Sources(inv, list(chosen.areas), specs),
                    WatchSettings(inventory, f"{by} (irm watch, policy {chosen.name})", dry_run, confirm_timeout,
                                  keep_warm, warm, sensor_interval))
        if sensor_interval > 0 and not dry_run:
            w.sensor = _sensor(inv, inventory, journal, chosen)
        w.events.subscribe(_printer)
        w.events.subscribe(notice.shown)
        j.timeline.add(None, EventKind.WATCH_STARTED, by, None, policy=chosen.name, path=str(policy), sha256=digest,
                       signers=signers, areas=list(chosen.areas), through=chosen.through, dry_run=dry_run)
        console.print(f"watching {', '.join(chosen.areas)} under policy {chosen.name} (signed by "
                      f"{', '.join(signers)}; through {chosen.through}; at most {chosen.limits.max_areas_per_hour} "
                      f"area(s) per hour){' DRY RUN' if dry_run else ''}", markup=False, highlight=False)
        stopping = {"now": False}

        def stop_on(signum: int, _: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop_on)
        end = time.monotonic() + duration if duration is not None else None
        from orchestrator.board.feed import attached as board_feed

        with contextlib.suppress(KeyboardInterrupt), board_feed(w.events, j.path, f"irm watch --policy {policy}"):
            w.serve(lambda: stopping["now"] or (end is not None and time.monotonic() >= end))
        console.print("irm watch stopped")
        sys.stdout.flush()


def _sensor(inv: Any, inventory: Path, journal: Path, chosen: Any) -> Any:
    """The boundaries of the policy's areas as a sensor: their gateways (and their hosts once the policy
    blocks the vectors on them), each read against what the newest open incident's postures plan for it.
    The sensor's thread reads the journal through a connection of its own."""
    from contextlib import closing

    from orchestrator.containment.table import STAGES
    from orchestrator.core import routing
    from orchestrator.identification.boundary import BoundarySensor, counter_reader
    from orchestrator.identification.status import journaled_policies

    vectors = next(p.number for p in STAGES if p.host_level)
    areas = [inv.area(a) for a in chosen.areas]
    hosts = [a.gateway for a in areas] + ([h for a in areas for h in a.hosts] if chosen.through_number >= vectors
                                          else [])

    def planned() -> Any:
        with closing(Journal.reader(journal)) as j:
            open_ = [i for i in j.incidents.all() if i.status == "open"]
            return journaled_policies(inv, j, open_[-1]) if open_ else {}

    return BoundarySensor(inv, hosts, counter_reader(inv, inventory, routing.route(inv)), planned)


@watch_app.command("pause")
def watch_pause(reason: ReasonOpt, journal: JournalOpt = Path(DEFAULT_PATH), operator: OperatorOpt = None) -> None:
    """Stop automatic action (the watcher keeps watching and journals what it holds back).

    Example: irm watch pause --reason 'false positives from the new IDS rule'
    """
    from orchestrator.core.events import EventKind

    why = check_text(reason, "watch pause: --reason", limit=500)
    with Journal(journal) as j:
        j.timeline.add(None, EventKind.WATCH_PAUSED, default_operator(operator), None, reason=why)
    console.print(f"automatic containment paused: {why}", markup=False, highlight=False)


@watch_app.command("resume")
def watch_resume(reason: ReasonOpt, journal: JournalOpt = Path(DEFAULT_PATH), operator: OperatorOpt = None) -> None:
    """Let the watcher act again under its policy.

    Example: irm watch resume --reason 'rule fixed'
    """
    from orchestrator.core.events import EventKind

    why = check_text(reason, "watch resume: --reason", limit=500)
    with Journal(journal) as j:
        j.timeline.add(None, EventKind.WATCH_RESUMED, default_operator(operator), None, reason=why)
    console.print(f"automatic containment resumed: {why}", markup=False, highlight=False)


@policy_app.command("sign")
def policy_sign(
    file: Annotated[Path, typer.Argument(help="The containment policy (YAML).")],
    key: Annotated[Path, typer.Option("--key", help="The approver's SSH private key (or a public key held in "
                                      "the SSH agent).")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Sign the policy as one of the inventory's approvers (ssh-keygen -Y, namespace irm-policy); the
    signature goes to FILE.sig. Any change to FILE afterwards voids every signature.

    Example: irm policy sign inventories/lab/containment-policy.yml --key ~/.ssh/id_ed25519
    """
    from orchestrator.watch import policy as pol

    inv = load(inventory)
    chosen, _ = pol.load(file)
    problems = pol.problems(chosen, inv, str(file))
    if problems:
        raise UserError(*problems, "nothing was signed")
    row = pol.sign(file, inv, key)
    console.print(f"{file}: signed by {row['approver']} ({row['role']}) with {row['fingerprint']}; "
                  f"signatures in {pol.sig_path(file)}", markup=False, highlight=False)


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="The containment policy (YAML).")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
) -> None:
    """Check the policy against the inventory and its signatures, as irm watch will. Exit 2 when irm
    watch would refuse it.

    Example: irm policy check inventories/lab/containment-policy.yml
    """
    from orchestrator.watch import policy as pol

    chosen, signers, digest = pol.verified(file, load(inventory))
    console.print(f"{file}: policy {chosen.name}, signed by {', '.join(signers)}, valid until "
                  f"{chosen.valid_until.isoformat()}; areas {', '.join(chosen.areas)} through {chosen.through}; "
                  f"sha256 {digest[:16]}", markup=False, highlight=False)


@watch_app.command("install")
def watch_install(
    policy: Annotated[Path, typer.Option("--policy", help="The signed containment policy (YAML).")],
    inventory: InventoryOpt = Path(DEFAULT_INVENTORY),
    journal: JournalOpt = Path(DEFAULT_PATH),
    unit_dir: Annotated[Path, typer.Option("--unit-dir", help="Where systemd reads units.")] = Path(
        "/etc/systemd/system"),
    name: Annotated[str, typer.Option("--name", help="The unit's name.")] = "irm-watch",
    force: Annotated[bool, typer.Option("--force", help="Replace a unit of that name.")] = False,
) -> None:
    """Write a systemd unit that runs irm watch with this policy, inventory and journal (restarted on
    failure; the journal tells a restarted watcher what it already did). The policy must verify now.

    Example: irm watch install --policy /etc/irm/containment-policy.yml -i /etc/irm/inventory
    """
    import os
    import shlex

    from orchestrator.watch import policy as pol

    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise UserError(f"--name '{name[:40]}': letters, digits, '-' and '_' only")
    chosen, signers, _ = pol.verified(policy, load(inventory))
    irm_bin = Path(sys.executable).parent / "irm"
    args = [str(irm_bin), "watch", "--policy", str(policy.resolve()), "--inventory", str(inventory.resolve()),
            "--journal", str(journal.resolve())]
    unit = (f"[Unit]\nDescription=irm watch: automatic containment under policy {chosen.name}\n"
            "After=network-online.target\nWants=network-online.target\n\n"
            f"[Service]\nType=simple\nExecStart={shlex.join(args)}\nRestart=on-failure\nRestartSec=2\n"
            "KillSignal=SIGTERM\nTimeoutStopSec=120\nEnvironment=IRM_OPERATOR=irm-watch\n\n"
            "[Install]\nWantedBy=multi-user.target\n")
    target = unit_dir / f"{name}.service"
    if not unit_dir.is_dir():
        raise UserError(f"--unit-dir {unit_dir}: not a directory")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise UserError(f"{target} exists: give --force to replace it") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot be written ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unit)
    console.print(f"{target}: irm watch under policy {chosen.name} (signed by {', '.join(signers)}); start it with "
                  f"'systemctl daemon-reload && systemctl enable --now {name}'", markup=False, highlight=False)
