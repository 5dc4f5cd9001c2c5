"""``irm prepare``: the response is ready (IRM #1, preparation), one check per line.

Every check says ok or what is wrong and how to fix it. Nothing is changed anywhere: the boundaries'
commit-confirmed round trip arms a timer that would restore what is already confirmed and stops it.
"""

from __future__ import annotations

import json
import os
import smtplib
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.core import paths, routing
from orchestrator.core.errors import RunnerError, UserError
from orchestrator.core.inventory import Inventory
from orchestrator.crisis import crisis_cell
from orchestrator.identification.sources import Sources
from orchestrator.preparation.validation import file_problems


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the installation's checksums -------------------------------------------------------------------------


def checksums() -> dict[str, str]:
    return {str(path): paths.sha256(path) for path in paths.own_files()}


def record(path: Path) -> int:
    sums = checksums()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), "files": sums},
                              indent=1, sort_keys=True))
    tmp.replace(path)
    return len(sums)


def check_install(path: Path) -> Check:
    name = "installation"
    try:
        data = json.loads(path.read_text())
        recorded: dict[str, str] = data["files"]
    except FileNotFoundError:
        return Check(name, False, f"no recorded checksums at {path}",
                     "run 'irm prepare --record' on a known-good installation, and keep a copy offline")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Check(name, False, f"{path} cannot be read as recorded checksums ({exc})",
                     "record again with 'irm prepare --record' from a known-good installation")
    now = checksums()
    changed = sorted(f for f in recorded if f in now and now[f] != recorded[f])
    gone = sorted(set(recorded) - set(now))
    added = sorted(set(now) - set(recorded))
    if not (changed or gone or added):
        return Check(name, True, f"{len(now)} files match the checksums recorded {data.get('recorded_at', '?')}")
    parts = [f"{label} {len(files)}: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
             for label, files in (("changed", changed), ("missing", gone), ("new", added)) if files]
    return Check(name, False, "irm's files differ from the recorded checksums: " + "; ".join(parts),
                 "reinstall irm from a trusted source, or, if the change is yours, record again")


# -- the other checks ------------------------------------------------------------------------------------


def check_journal(path: Path) -> Check:
    name = "journal"
    if path.exists():
        try:
            db = sqlite3.connect(path, timeout=5)
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            finally:
                db.close()
        except sqlite3.Error as exc:
            return Check(name, False, f"{path} cannot be written ({exc})", "check its permissions and the disk")
        return Check(name, True, f"{path} is writable")
    parent = path.resolve().parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check(name, True, f"{path} will be created on the first incident ({parent} is writable)")
    return Check(name, False, f"{parent} does not exist or cannot be written", f"create {parent} or pass --journal")


def check_plans(plans: list[Path]) -> Check:
    if not plans:
        return Check("plans", True, "no plan file given (--plan FILE checks one)")
    problems, _ = file_problems(plans, [])
    return Check("plans", not problems, "; ".join(problems) if problems else f"{len(plans)} plan(s) validate",
                 "fix each plan as named" if problems else "")


def check_sources(inv: Inventory, now: datetime) -> list[Check]:
    sources = Sources(inv)
    sources.detections(now - timedelta(days=1))
    out = []
    for spec, health in zip(sources.specs, sources.health(), strict=True):
        name = f"source {health.label}"
        if spec.kind == "lab_av":
            missing = [h.name for h in inv.hosts.values() if h.kind == "area" and h.av_log
                       and not Path(h.av_log).parent.is_dir()]
            out.append(Check(name, not missing, f"AV log directory missing on {', '.join(missing)}" if missing
                             else "every area host's AV log directory exists", "is the lab up?" if missing else ""))
            continue
        if not health.readable:
            out.append(Check(name, False, "cannot be read", "check the path and the permissions of the feed"))
            continue
        silent = (now - health.newest).total_seconds() if health.newest else None
        if spec.max_silence is not None and (silent is None or silent > spec.max_silence):
            out.append(Check(name, False, "no record ever" if silent is None else
                             f"silent for {silent:.0f}s (more than {spec.max_silence:.0f}s)",
                             "the sensor or its export is dead: restart it"))
            continue
        extra = f"; {health.skipped} line(s) not understood" if health.skipped else ""
        extra += f"; {sum(health.unmapped.values())} record(s) from addresses/names not in the inventory" \
            if health.unmapped else ""
        newest = health.newest.isoformat(timespec="seconds") if health.newest else "none yet"
        out.append(Check(name, True, f"readable, newest record {newest}{extra}"))
    return out


def check_crisis_cell(inv: Inventory, today: date) -> Check:
    cell, why = crisis_cell.load(inv)
    if cell is None:
        return Check("crisis cell", False, why or "no directory",
                     "write the directory (docs/runbook/1-preparation.md, 'The crisis cell')")
    problems = crisis_cell.problems(inv, cell, today)
    count = len(crisis_cell.entries(cell))
    return Check("crisis cell", not problems, "; ".join(problems) if problems else
                 f"{count} entries, every role present, none older than {cell.max_age_days} days",
                 "complete or review the entries named" if problems else "")


def check_notify(inv: Inventory) -> Check:
    smtp, hook = inv.notify.smtp, inv.notify.webhook
    if smtp is None and hook is None:
        return Check("notification", False, "no channel (irm_notify: smtp, webhook)",
                     "configure irm_notify so the crisis cell hears of every phase change")
    done = []
    if smtp is not None:
        from orchestrator.crisis.notify import lab_address_down

        down = lab_address_down(inv, smtp.host)
        if down:
            return Check("notification", False, down, "irm lab up")
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
                client.noop()
        except (OSError, smtplib.SMTPException) as exc:
            return Check("notification", False, f"SMTP {smtp.host}:{smtp.port} does not answer ({exc})",
                         "check the mail relay and irm_notify.smtp")
        done.append(f"SMTP {smtp.host}:{smtp.port} answers")
    if hook is not None:
        done.append(f"webhook {hook.url} configured (not called: a test message would reach people)")
    return Check("notification", True, "; ".join(done))


def check_warm(inv: Inventory, inventory: str | Path) -> Check:
    """The warm path's options of every Linux host, resolved now and kept (``core.warm_resolve``): a
    containment whose hosts' options are all kept starts its first stage without a play."""
    from pydantic import ValidationError

    from orchestrator.core import warm_resolve
    from orchestrator.core.errors import IrmError
    from orchestrator.core.warm import WarmHost

    name = "warm path"
    linux = [h.name for h in inv.managed_hosts if h.os == "linux" and h.boundary_kind != "cisco_ios"]
    if not linux:
        return Check(name, True, "no Linux host: nothing to resolve")
    if warm_resolve.cached(str(inventory), linux, {h: str(inv.hosts[h].address) for h in linux}) is not None:
        return Check(name, True, f"the options of {len(linux)} Linux hosts are resolved and kept: the first "
                                 "stage goes warm")
    try:
        found = warm_resolve.resolve(str(inventory), linux)
    except IrmError as exc:
        return Check(name, False, str(exc), "the stages run as plays (slower); see the message above")
    failed = sorted(h for h in linux if not isinstance(found.get(h), dict) or "error" in found[h])
    if failed:
        return Check(name, False, f"no options resolved for {', '.join(failed[:5])}"
                                  + (f" and {len(failed) - 5} more" if len(failed) > 5 else "") + ": "
                                  + str(found.get(failed[0], {}).get("error", "no result")),
                     "these hosts' stages run as plays")
    refused: dict[str, str] = {}
    for h in linux:
        try:
            why = WarmHost.model_validate(found[h]).refusal()
        except ValidationError as exc:
            why = f"its options are not usable: {exc.errors()[0]['msg']}"
        if why:
            refused[h] = why
    kept = warm_resolve.cached(str(inventory), linux, {h: str(inv.hosts[h].address) for h in linux}) is not None
    detail = (f"the options of {len(linux)} Linux hosts resolved" + (" and kept: the first stage goes warm"
              if kept else ", not kept (a dynamic or vaulted inventory, or a template that calls something): "
              "the first stage runs as a play"))
    if refused:
        detail += f"; {len(refused)} run as plays ({next(iter(refused))}: {next(iter(refused.values()))})"
    return Check(name, True, detail)


def check_hosts(inv: Inventory, inventory: str | Path) -> list[Check]:
    """Every managed host answers on its management connection; every boundary rehearses the
    commit-confirmed round trip (Linux: the irm_nft module; IOS: irm's own SSH client)."""
    from orchestrator.core import ios_readback

    managed = [h.name for h in inv.managed_hosts]
    boundaries = [h for h in inv.hosts.values() if h.kind in ("edge", "core", "gateway")]
    linux = [h.name for h in boundaries if h.boundary_kind == "nftables" and h.os == "linux"]
    try:
        result = routing.route(inv)("prepare", inventory, extravars={
            "irm_targets": ",".join(managed) or "all:!all", "irm_boundaries_linux": ",".join(linux) or "all:!all",
            "irm_token": f"prepare-{os.getpid()}"})
    except RunnerError as exc:
        return [Check("management", False, f"the preparation play could not run ({exc})", "see the message")]
    unreachable = sorted(h for h, r in result.hosts.items() if r.status == "unreachable")
    missing = sorted(set(managed) - set(result.hosts))
    failed = {h: r.failures for h, r in result.hosts.items() if r.status == "failed" and h not in linux}
    out = [Check("management", not (unreachable or missing or failed),
                 f"{len(managed) - len(unreachable) - len(missing) - len(failed)} of {len(managed)} hosts answer"
                 + (f"; unreachable: {', '.join(unreachable + missing)}" if unreachable or missing else "")
                 + "".join(f"; {h}: {'; '.join(f)[:200]}" for h, f in sorted(failed.items())),
                 "bring them back, or exclude them from the response ('irm exclude')" if unreachable or missing
                 or failed else "")]
    for name in linux:
        r = result.hosts.get(name)
        if r is None or r.status == "unreachable":
            out.append(Check(f"round trip {name}", False, "not run: the boundary does not answer", "bring it back"))
        elif r.status == "failed":
            out.append(Check(f"round trip {name}", False, "; ".join(r.failures)[:300],
                             "see 'irm status --verify'; no containment can be confirmed here until fixed"))
        else:
            out.append(Check(f"round trip {name}", True, "dead-man timer armed and stopped; nothing left armed"))
    for host in (h for h in boundaries if h.boundary_kind == "cisco_ios"):
        try:
            ios_readback.rehearse(host)
        except UserError as exc:
            out.append(Check(f"round trip {host.name}", False, str(exc), "see the message"))
        else:
            out.append(Check(f"round trip {host.name}", True, "revert timer opened and confirmed; nothing pending"))
    return out


def check_nodes(inv: Inventory) -> list[Check]:
    """Each execution node answers and runs exactly the controller's versions and irm's files."""
    from orchestrator.core import nodes

    out = []
    for host in inv.execution_nodes:
        problems = nodes.check(nodes.execution_node(host))
        out.append(Check(f"node {host.name}", not problems, "; ".join(problems) if problems else
                         "reachable; runs the controller's ansible-core, ansible, ansible-runner and irm's files",
                         f"irm node install {host.name}" if problems else ""))
    return out


def prepare(inv: Inventory, inventory: str | Path, journal: Path, plans: list[Path], checksum_file: Path,
            now: datetime | None = None) -> list[Check]:
    now = now or datetime.now(UTC)
    checks = [Check("inventory", True, f"{inv.source}: {len(inv.hosts)} hosts, {len(inv.areas)} areas valid")]
    checks += check_hosts(inv, inventory)
    checks += check_nodes(inv)
    checks += check_sources(inv, now)
    checks += [check_warm(inv, inventory)]
    checks += [check_journal(journal), check_plans(plans), check_crisis_cell(inv, now.date()), check_notify(inv),
               check_install(checksum_file)]
    return checks
