"""The response as an OASIS CACAO v2.0 playbook (``irm export cacao``).

Without ``as_run`` it is the plan for the inventory: per area, the containment stages in the table's
order, remediation, management's approval (a manual step), then the recovery steps in their fixed order;
several areas are branches of one parallel step, as irm runs them. With ``as_run`` it is what the
journal says was done: every stage and step that ran (dry runs left out), in the order it started, with
its times, its outcome and each host's status, and each signed approval as a manual step.

CACAO has no Ansible command type. Each step's command is the ``irm`` command line that runs it (a
``bash`` command on the SOC controller: irm's lockout check, dead-man timer and read-back go with it);
the Ansible playbook, its hosts and, as run, the outcome ride in the step's ``step_extensions`` under a
declared extension definition (``EXTENSION``), documented in docs/cacao.md.

Every identifier is a version-5 UUID derived from the incident, the area and the step, so exporting the
same thing twice gives the same ids (a new version of a playbook keeps its id; ``modified`` tells the
versions apart). Before anything is written the document is checked against the official CACAO v2 JSON
schemas (``cacao_schemas/``, OASIS, Apache-2.0, draft-07) and by ``semantic_errors`` (what the schemas do
not check): ``export`` refuses to hand out a playbook that fails either.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.containment.table import CONTAINMENT, containment_stage
from orchestrator.core.errors import IrmError, UserError
from orchestrator.core.inventory import Area, Host, Inventory
from orchestrator.core.journal import Journal
from orchestrator.recovery.table import RECOVERY, recovery_step

SCHEMAS = Path(__file__).resolve().parent / "cacao_schemas"
_NS = uuid.UUID("6f1d3c52-8a0e-5b7e-9a41-0c9d2e7f3b18")  # irm's namespace for its CACAO ids
EXTENSION = "extension-definition--" + str(uuid.uuid5(_NS, "irm-ansible-stage/1"))
IDENTITY = "identity--" + str(uuid.uuid5(_NS, "irm"))
EXTENSION_SCHEMA = (
    "irm-ansible-stage 1.0 (docs/cacao.md in irm): a step run by irm through Ansible. Properties: phase "
    "(containment, remediation, recovery), stage (its name in irm's phase tables), number (its place in "
    "the table), playbook (the playbook of irm's content that applies it), area, hosts (inventory names), "
    "run_by (the irm command that runs it: its lockout check, commit-confirmed change and read-back); as "
    "run also state (done, failed, interrupted, ...), started and ended (UTC), operator, results (host: "
    "ok, changed, failed or unreachable).")
ACTIVITY = {"internet_cut": "disconnect-system", "isolate": "restrict-access", "vectors": "restrict-access",
            "mobile": "restrict-access", "subarea": "restrict-access"}
CATEGORY = {"firewall": "a boundary irm changes by nftables", "router": "a Cisco IOS boundary irm changes by "
            "access lists", "endpoint": "an area host irm changes by its host firewall"}


class CacaoError(IrmError):
    """The playbook irm built fails the CACAO schemas or irm's own checks: a defect, never written."""

    exit_code = 70


def ts(at: datetime | str | None = None) -> str:
    """A CACAO timestamp: UTC to the millisecond, with a Z."""
    moment = datetime.now(UTC) if at is None else datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ident(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(_NS, '/'.join(str(p) for p in parts))}"


@dataclass
class _Builder:
    """The workflow under construction: steps by id, agents and targets by id."""

    scope: str  # what every id is derived from (the playbook's own id's parts)
    workflow: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, kind: str, key: str, **body: Any) -> str:
        sid = ident(kind, self.scope, key)
        self.workflow[sid] = {"type": kind, **{k: v for k, v in body.items() if v not in (None, [], {})}}
        return sid

    def chain(self, ids: list[str], key: str) -> str:
        """Link ``ids`` one after the other, ending in an end step of their own; returns the first id."""
        end = self.step("end", f"{key}/end", name=f"end of {key}")
        for a, b in zip(ids, [*ids[1:], end], strict=True):
            self.workflow[a]["on_completion"] = b
        return ids[0] if ids else end

    def irm_agent(self) -> str:
        aid = ident("security-category", "irm")
        self.agents[aid] = {"type": "security-category", "name": "irm on the SOC controller",
                            "description": "irm, the worm infection response orchestrator: runs each step through "
                            "Ansible, with its lockout check, dead-man timer and read-back",
                            "category": ["orchestrator"]}
        return aid

    def approver(self, name: str, role: str) -> str:
        aid = ident("individual", "approver", name)
        self.agents[aid] = {"type": "individual", "name": name, "description": f"approves recovery ({role})"}
        return aid

    def category(self, which: str) -> str:
        tid = ident("security-category", "category", which)
        self.targets[tid] = {"type": "security-category", "name": f"{which}s", "description": CATEGORY[which],
                             "category": [which]}
        return tid

    def device(self, host: Host) -> list[str]:
        """The target of one host and the category it belongs to."""
        which = "endpoint" if host.kind == "area" else "router" if host.boundary_kind == "cisco_ios" else "firewall"
        if host.boundary_kind == "cisco_ios":
            kind, text = "ssh", "Cisco IOS boundary over SSH (network_cli)"
        elif host.os == "windows":
            kind, text = "net-address", "Windows host (WinRM)"
        else:
            kind, text = "linux", "Linux host over SSH"
        tid = ident(kind, "host", host.name)
        where = f" in {host.area}" if host.area else ""
        self.targets[tid] = {"type": kind, "name": host.name,
                             "description": f"{host.kind} host{where}: {text}, {which}",
                             "address": {"ipv4": [str(host.address)]}}
        return [tid, self.category(which)]


def _stage_targets(b: _Builder, inv: Inventory, names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name in inv.hosts:
            out += [t for t in b.device(inv.hosts[name]) if t not in out]
    return out


def _where(inv: Inventory, area: Area, phase_where: str) -> list[str]:
    if phase_where == "edge":
        return [inv.edge.name] if inv.edge else []
    if phase_where == "area gateway":
        return [area.gateway]
    return list(area.hosts)


def _command(text: str, description: str, activity: str | None = None) -> dict[str, Any]:
    cmd: dict[str, Any] = {"type": "bash", "command": text, "description": description}
    if activity:
        cmd["playbook_activity"] = activity
    return cmd


def _extension(**props: Any) -> dict[str, Any]:
    return {EXTENSION: {k: v for k, v in props.items() if v is not None}}


def _document(b: _Builder, name: str, description: str, start_next: str, created: str, labels: list[str],
              playbook_id: str) -> dict[str, Any]:
    start = b.step("start", "start", name="start", on_completion=start_next)
    now = ts()
    return {
        "type": "playbook", "spec_version": "cacao-2.0", "id": playbook_id, "name": name,
        "description": description, "playbook_types": ["mitigation", "remediation"],
        "playbook_activities": ["disconnect-system", "restrict-access", "eliminate-risk", "restore-capabilities"],
        "created_by": IDENTITY, "created": created, "modified": now, "labels": labels,
        "external_references": [{"name": "CERT Societe Generale IRM #1: Worm Infection Response",
                                  "url": "https://github.com/certsocietegenerale/IRM"}],
        "workflow_start": start, "workflow": b.workflow, "agent_definitions": b.agents,
        "target_definitions": b.targets,
        "extension_definitions": {EXTENSION: {
            "type": "extension-definition", "name": "irm Ansible stage", "created_by": IDENTITY,
            "description": "A step irm runs through Ansible: the playbook, its hosts and, as run, the outcome.",
            "schema": EXTENSION_SCHEMA, "version": "1.0.0"}},
    }


def _branches(b: _Builder, firsts: list[str], key: str) -> str:
    """One branch: itself; several: a parallel step over them, ending in an end step."""
    if len(firsts) == 1:
        return firsts[0]
    end = b.step("end", f"{key}/end", name="every area done")
    return b.step("parallel", key, name="the areas at once", description="irm runs these areas' stages together",
                  next_steps=firsts, on_completion=end)


def plan(inv: Inventory, areas: list[str], incident: int | None = None) -> dict[str, Any]:
    """The response for ``areas`` of the inventory, in IRM order, as irm would run it."""
    b = _Builder(scope=f"plan/{inv.source}/{incident or ''}/{','.join(areas)}")
    agent = b.irm_agent()
    approvers = [b.approver(a.name, a.role) for a in inv.approvers] or [b.approver("management", "management")]
    inc = f" --incident {incident}" if incident else ""
    firsts = []
    for name in areas:
        area = inv.area(name)
        ids = []
        for p in CONTAINMENT:
            hosts = _where(inv, area, p.where)
            ids.append(b.step(
                "action", f"{name}/containment/{p.name}", name=f"containment {p.number}: {p.title} ({name})",
                description=p.title + (" (one sub-area at a time, until the spread stops)" if p.per_sub_area else ""),
                agent=agent, targets=_stage_targets(b, inv, hosts),
                commands=[_command(f"irm contain --area {name}{inc}", f"irm contain runs stage {p.number} of the "
                                   "containment table", ACTIVITY.get(p.name))],
                step_extensions=_extension(phase="containment", stage=p.name, number=p.number,
                                           playbook=f"{p.playbook}.yml", area=name, hosts=hosts,
                                           run_by=f"irm contain --area {name}")))
        ids.append(b.step(
            "action", f"{name}/remediation", name=f"remediation ({name})",
            description="disinfect and patch every area host, verify each, list the hosts left for manual work",
            agent=agent, targets=_stage_targets(b, inv, list(area.hosts)),
            commands=[_command(f"irm remediate --area {name}{inc}", "irm remediate", "eliminate-risk")],
            step_extensions=_extension(phase="remediation", stage="remediation", area=name, hosts=list(area.hosts),
                                       run_by=f"irm remediate --area {name}")))
        for i, agent_id in enumerate(approvers):
            ids.append(b.step(
                "action", f"{name}/approval/{i}", name=f"management approves the recovery of {name}",
                description="a signed approval (irm approve) before any reconnection", agent=agent_id,
                commands=[{"type": "manual", "command": f"irm approve --area {name}{inc}",
                           "description": "sign the approval statement with the approver's SSH key"}]))
        for p in RECOVERY:
            hosts = _where(inv, area, p.where)
            ids.append(b.step(
                "action", f"{name}/recovery/{p.name}", name=f"recovery {p.number}: {p.title} ({name})",
                description=f"{p.title}; a soak watches for new detections before the next step", agent=agent,
                targets=_stage_targets(b, inv, hosts),
                commands=[_command(f"irm recover --area {name} --only {p.name}{inc}",
                                   f"irm recover runs step {p.number} of the recovery table", "restore-capabilities")],
                step_extensions=_extension(phase="recovery", stage=p.name, number=p.number,
                                           playbook=f"{p.playbook}.yml", area=name, hosts=hosts,
                                           run_by=f"irm recover --area {name}")))
        firsts.append(b.chain(ids, name))
    what = ", ".join(areas)
    return _document(b, f"irm worm infection response: {what}",
                     f"The IRM #1 response irm runs for {what}: containment, remediation, approval, recovery.",
                     _branches(b, firsts, "areas"), ts(), ["irm", "plan"],
                     ident("playbook", b.scope))


def as_run(inv: Inventory, journal: Journal, incident_id: int, areas: list[str] | None = None) -> dict[str, Any]:
    """What the journal says was done for the incident (every area it touched, or ``areas``)."""
    inc = journal.incidents.get(incident_id)
    # the incident's number and the moment it was opened: two journals' incident 1 are two playbooks
    b = _Builder(scope=f"as-run/{incident_id}/{inc.opened_at}")
    agent = b.irm_agent()
    stages = [s for s in journal.stages.of(incident_id) if not s.check_mode]
    touched = list(dict.fromkeys(s.area for s in stages))
    chosen = [a for a in touched if areas is None or a in areas]
    items: dict[str, list[tuple[str, str]]] = {a: [] for a in chosen}  # area -> (started, step id)
    for s in stages:
        if s.area not in items:
            continue
        results = journal.stages.hosts(s.id)
        hosts = [r["host"] for r in results] or [h for h in s.target.split(",") if h]
        number, playbook = _table_entry(s.phase, s.name)
        run_by = {"containment": "irm contain", "recovery": "irm recover", "remediation": "irm remediate"}.get(
            s.phase, "irm")
        sid = b.step(
            "action", f"stage/{s.id}", name=f"{s.phase} {s.name} ({s.area}): {s.state}",
            description=f"{s.phase} stage {s.name}, started {ts(s.started_at)}, "
            + (f"ended {ts(s.ended_at)}, {s.state}" if s.ended_at else f"not ended ({s.state})"),
            agent=agent, targets=_stage_targets(b, inv, hosts),
            commands=[_command(f"{run_by} --area {s.area} --incident {incident_id}", f"run by {s.operator}",
                               ACTIVITY.get(s.name.split(":")[0]) if s.phase == "containment" else None)],
            step_extensions=_extension(
                phase=s.phase, stage=s.name, number=number, playbook=playbook, area=s.area, hosts=hosts,
                run_by=f"{run_by} --area {s.area}", state=s.state, started=ts(s.started_at),
                ended=ts(s.ended_at) if s.ended_at else None, operator=s.operator,
                results={r["host"]: r["status"] for r in results}))
        items[s.area].append((s.started_at, sid))
    for i, ap in enumerate(journal.decisions.approvals(incident_id)):
        if ap["area"] not in items:
            continue
        who = b.approver(ap["approved_by"], ap["role"])
        sid = b.step(
            "action", f"approval/{ap['id']}", name=f"{ap['approved_by']} approved the recovery of {ap['area']}",
            description=f"signed approval at {ts(ap['approved_at'])}: {ap['reason']}", agent=who,
            commands=[{"type": "manual", "command": f"irm approve --area {ap['area']} --incident {incident_id}",
                       "description": f"key {ap['key_fingerprint'] or 'unrecorded'}, recorded by "
                       f"{ap['recorded_by']} ({i + 1})"}])
        items[str(ap["area"])].append((ap["approved_at"], sid))
    if not any(items.values()):
        raise UserError(f"export cacao --as-run: incident {incident_id}'s journal holds no stage"
                         + (f" for {', '.join(areas)}" if areas else "") + ": nothing was done to export")
    firsts = [b.chain([sid for _, sid in sorted(steps)], area) for area, steps in items.items() if steps]
    what = ", ".join(a for a, steps in items.items() if steps)
    return _document(b, f"irm incident {incident_id} as run: {what}",
                     f"What irm did for incident {incident_id} ({inc.spec.worm}) in {what}, from its journal.",
                     _branches(b, firsts, "areas"), ts(inc.opened_at), ["irm", "as-run", inc.spec.worm],
                     ident("playbook", b.scope))


def _table_entry(phase: str, name: str) -> tuple[int | None, str | None]:
    try:
        if phase == "containment":
            p = containment_stage(name)
        elif phase == "recovery":
            p = recovery_step(name)
        else:
            return None, None
    except KeyError:
        return None, None
    return p.number, f"{p.playbook}.yml"


# -- checks -------------------------------------------------------------------------------------------

@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted(SCHEMAS.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7)))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = json.loads((SCHEMAS / "playbook.json").read_text(encoding="utf-8"))
    return Draft7Validator(root, registry=registry)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Where ``doc`` fails the official CACAO v2 schemas, one line each."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(playbook)'}: {e.message[:200]}"
            for e in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def semantic_errors(doc: dict[str, Any]) -> list[str]:
    """What the schemas do not check: every reference resolves (steps, agents, targets, extensions), a
    step never combines ``on_completion`` with ``on_success``/``on_failure``, a parallel step has two or
    more branches, and every path from ``workflow_start`` reaches an end step (no dangling pointer, no
    cycle, no step left unreachable)."""
    errors: list[str] = []
    wf: dict[str, Any] = doc.get("workflow") or {}
    agents = doc.get("agent_definitions") or {}
    targets = doc.get("target_definitions") or {}
    exts = doc.get("extension_definitions") or {}
    start = doc.get("workflow_start")
    if start not in wf:
        errors.append(f"workflow_start {start} is no step of the workflow")
    elif wf[start].get("type") != "start":
        errors.append(f"workflow_start {start} is a {wf[start].get('type')} step, not a start step")

    def nexts(sid: str, step: dict[str, Any]) -> list[str]:
        out = [step[k] for k in ("on_completion", "on_success", "on_failure") if k in step]
        return out + list(step.get("next_steps") or [])

    for sid, step in wf.items():
        if "on_completion" in step and ("on_success" in step or "on_failure" in step):
            errors.append(f"step {sid}: on_completion with on_success/on_failure")
        if step.get("type") == "parallel" and len(step.get("next_steps") or []) < 2:
            errors.append(f"step {sid}: a parallel step with fewer than two branches")
        if step.get("type") != "end" and not nexts(sid, step):
            errors.append(f"step {sid}: a {step.get('type')} step that leads nowhere (no end step after it)")
        for nxt in nexts(sid, step):
            if nxt not in wf:
                errors.append(f"step {sid}: next step {nxt} does not exist")
        if "agent" in step and step["agent"] not in agents:
            errors.append(f"step {sid}: agent {step['agent']} is not defined")
        for t in step.get("targets") or []:
            if t not in targets:
                errors.append(f"step {sid}: target {t} is not defined")
        for e in step.get("step_extensions") or {}:
            if e not in exts:
                errors.append(f"step {sid}: extension {e} is not defined")
    if errors:
        return errors
    # every path ends at an end step: a walk with the steps on the current path (a cycle) and the done ones
    done: set[str] = set()
    path: list[str] = []

    def walk(sid: str) -> None:
        if sid in done:
            return
        if sid in path:
            errors.append(f"step {sid}: the workflow loops back to it")
            return
        path.append(sid)
        for nxt in nexts(sid, wf[sid]):
            walk(nxt)
        path.pop()
        done.add(sid)

    walk(str(start))
    errors += [f"step {sid}: not reachable from workflow_start" for sid in wf if sid not in done]
    return errors


def checked(doc: dict[str, Any]) -> str:
    """``doc`` as JSON once it passes the schemas and the semantic checks (``CacaoError`` otherwise)."""
    errors = schema_errors(doc) + semantic_errors(doc)
    if errors:
        raise CacaoError(f"the CACAO playbook irm built is not valid ({len(errors)} problem(s)), not written: "
                         + "; ".join(errors[:3]))
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
