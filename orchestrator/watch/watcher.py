"""``irm watch``: containment at worm speed under a policy the crisis cell signed in advance.

The watcher follows every detection source as it is written (inotify on the directories the sources
live in; a read every second regardless), evaluates the policy's trigger, and for each area that crosses
it: opens the incident from the policy's template when none is open, journals the automatic action
under the policy's digest and signers, tells the crisis cell, and contains the areas at once with the
same commit-confirmed, lockout-checked stages as ``irm contain``, up to the policy's last automatic
stage. It never remediates, recovers or loosens anything.

The boundaries are a source too (``sensor``, read by a thread of its own every ``sensor_interval``
seconds): irm's drop counters on the gateways of the areas it holds, read live. With ``quarantine`` in
the policy, each sub-area of a held area that crosses the trigger (its worm dropped by the boundary, or
detected by the other sources) is quarantined at once: the sub-area loop at worm speed.

The journal is the truth across restarts: an area whose state in the open incident already holds every
stage the policy runs is not acted on again. ``irm watch pause`` (journaled, with a reason) stops
automatic action without stopping the watcher; the hourly limit counts the journal's automatic actions,
so a restart does not reset it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import select
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.containment.phase import Containment, ContainRequest, summary
from orchestrator.containment.table import CONTAINMENT, HOST_STAGE, STAGES
from orchestrator.core import mgmt_probe, runner
from orchestrator.core.detection import BOUNDARY_SOURCE, Drop, DropSensor
from orchestrator.core.errors import ContainmentFailed, IrmError, RunnerError, UserError
from orchestrator.core.events import EventKind
from orchestrator.core.incident import IncidentSpec
from orchestrator.core.inventory import Inventory
from orchestrator.core.ios_direct import IosDirect
from orchestrator.core.journal import Incident, Journal
from orchestrator.core.posture import AreaState
from orchestrator.core.safetext import text_problem
from orchestrator.core.stream import DecisionNeeded, EventStream
from orchestrator.core.warm import WarmPath
from orchestrator.crisis import notify
from orchestrator.identification.sources import Sources
from orchestrator.watch.policy import ContainmentPolicy
from orchestrator.watch.trigger import Seen, triggered, triggered_segments

RETRY_AFTER = 30.0  # seconds before an area whose automatic containment failed is tried again
LOCK_WAIT = 10.0  # an operator's run holding the boundaries: retried later rather than waited on for minutes
PAUSE_KINDS = (EventKind.WATCH_PAUSED, EventKind.WATCH_RESUMED)


def pause_reason(journal: Journal) -> str | None:
    """Why automatic action is paused (the newest pause's reason), or None when it is not."""
    rows = journal.timeline.of_kinds(PAUSE_KINDS)
    if rows and rows[-1]["kind"] == EventKind.WATCH_PAUSED:
        return str(rows[-1]["detail"].get("reason", ""))
    return None


@dataclass(frozen=True)
class WatchSettings:
    inventory: Path
    operator: str
    dry_run: bool = False
    confirm_timeout: int = 60
    keep_warm: float = 20.0  # seconds between two checks of the chokepoints' connections (0: none)
    warm: bool = True  # cut over held SSH connections where the stage and the host allow (core.warm)
    sensor_interval: float = 10.0  # seconds between two live readings of the boundaries' drop counters (0: none)


@dataclass
class Watcher:
    inv: Inventory
    journal: Journal
    policy: ContainmentPolicy
    sha256: str
    signers: list[str]
    sources: Sources
    settings: WatchSettings
    events: EventStream = field(default_factory=EventStream)
    run_playbook: runner.PlaybookRunner = runner.run_playbook
    probe_management: runner.ManagementProber = mgmt_probe.probe
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    reported: set[tuple[str, str]] = field(default_factory=set)  # (area, why) refusals already journaled
    failed_at: dict[str, float] = field(default_factory=dict)
    dry_acted: set[str] = field(default_factory=set)
    source_problems: set[str] = field(default_factory=set)  # what the sources cannot vouch for, as last said
    unreached: set[str] = field(default_factory=set)  # chokepoints the last keep-warm reach did not reach
    warm_path: WarmPath | None = None  # held connections to the chokepoints (``start_warm``)
    warm_factory: Callable[..., WarmPath] = WarmPath  # how the warm path is made (tests give a stand-in ssh)
    ios_direct: IosDirect | None = None  # held netmiko sessions to the IOS chokepoints (``start_warm``)
    ios_factory: Callable[..., IosDirect] = IosDirect
    sensor: DropSensor | None = None  # the boundaries' drop counters (identification.boundary), read by a thread
    drops: queue.SimpleQueue[Drop] = field(default_factory=queue.SimpleQueue)  # what the thread read, not yet told
    boundary_seen: list[Seen] = field(default_factory=list)  # the boundaries' detections, within the window
    # segments whose drops are the boundary doing its job (quarantined sub-areas, mobile segments): their
    # counts are read, not reported; set by the evaluating thread from the journal, read by the sensor's
    sensor_skip: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        notify.listen(self.events, self.inv, self.journal)

    # -- what the sources say ------------------------------------------------------------------------

    def seen(self, now: datetime) -> list[Seen]:
        since = now - timedelta(seconds=self.policy.trigger.within_seconds)
        self._boundary_drops()
        self.boundary_seen = [s for s in self.boundary_seen if s.detection.time >= since]
        return [Seen(d, spec.label, spec.kind) for spec, src in self.sources.sources
                for d in src.detections(since)] + self.boundary_seen

    def _boundary_drops(self) -> None:
        """What the sensor thread read since the last evaluation: journaled, told, and a detection like
        the others (source ``boundary``)."""
        incident = self.incident()
        while True:
            try:
                drop = self.drops.get_nowait()
            except queue.Empty:
                return
            d = drop.detection
            self.boundary_seen.append(Seen(d, BOUNDARY_SOURCE, BOUNDARY_SOURCE))
            self.journal.timeline.add(incident.id if incident else None, EventKind.BOUNDARY_DROPS,
                                      self.settings.operator, d.area, segment=str(d.segment), host=d.host,
                                      packets=drop.packets, total=drop.total)
            self.events.say(f"boundary {d.host} dropped {drop.packets} worm attempt(s) from {d.segment}")

    # -- the journal's truth -----------------------------------------------------------------------

    def incident(self) -> Incident | None:
        open_ = [i for i in self.journal.incidents.all() if i.status == "open"]
        return open_[-1] if open_ else None

    @property
    def cut_through(self) -> int:
        """The stages that cut an area off (those before the first host-level stage: the Internet cut,
        isolation), as far as the policy goes: every triggering area gets them before any area gets its
        host-level stages."""
        return min(self.policy.through_number, HOST_STAGE.number - 1)

    def holds(self, incident: Incident | None, area: str, through: int | None = None) -> bool:
        """The area's state in ``incident`` already holds every stage the policy runs (or up to ``through``)."""
        if incident is None:
            return False
        now = AreaState.from_scopes(area, self.journal.stages.postures(incident.id))
        target = now
        for p in STAGES[: self.policy.through_number if through is None else through]:
            target = p.transition(target, None)
        return target == now

    def contained_last_hour(self) -> list[str]:
        since = (self.clock() - timedelta(hours=1)).isoformat()
        return [a for e in self.journal.timeline.of_kinds((EventKind.WATCH_TRIGGERED,), since)
                if not e["detail"].get("dry_run") for a in e["detail"].get("areas", [])]

    # -- one evaluation --------------------------------------------------------------------------------

    def step(self) -> list[str]:
        """Read the sources, evaluate the trigger, act; returns the areas contained (or, in a dry run,
        that would have been). Then, when the policy quarantines, the sub-areas of the areas it holds."""
        now = self.clock()
        seen = self.seen(now)
        self._sources_health(now)
        self.sensor_skip = self._held_segments()
        contained = self._contain_step(now, seen)
        if contained:  # cutting off the next area comes before deepening any: evaluate again first
            return contained
        self._deepen_step(now)
        if self.policy.quarantine:
            self._quarantine_step(now, seen)
        return contained

    def _held_segments(self) -> frozenset[str]:
        """The policy areas' segments that can no longer spread: the quarantined sub-areas of the open
        incident, and every mobile segment (blocked whole, never quarantined)."""
        incident = self.incident()
        postures = self.journal.stages.postures(incident.id) if incident else {}
        out = set()
        for name in self.policy.areas:
            area = self.inv.area(name)
            out |= {s.qualified for s in area.segments} - {s.qualified for s in area.sub_areas}
            out |= AreaState.from_scopes(name, postures).quarantined
        return frozenset(out)

    def _gate(self, now: datetime, what: list[str]) -> bool:
        """Whether the policy lets irm act now (valid, not paused); a refusal is journaled and told."""
        if now >= self.policy.valid_until:  # verified at start; a long-running watcher outlives it
            self._refuse(what, f"policy {self.policy.name} expired at {self.policy.valid_until.isoformat()}")
            return False
        paused = pause_reason(self.journal)
        if paused is not None:
            self._refuse(what, f"automatic action is paused: {paused}")
            return False
        return True

    def _contain_step(self, now: datetime, seen: list[Seen]) -> list[str]:
        hits = triggered(self.policy, seen, now)
        incident = self.incident()
        todo = {a: why for a, why in hits.items()
                if not self.holds(incident, a, self.cut_through) and a not in self.dry_acted
                and time.monotonic() - self.failed_at.get(a, -RETRY_AFTER) >= RETRY_AFTER}
        if not todo or not self._gate(now, list(todo)):
            return []
        room = max(0, self.policy.limits.max_areas_per_hour - len(set(self.contained_last_hour())))
        chosen = dict(list(todo.items())[:room])
        over = [a for a in todo if a not in chosen]
        if chosen:
            self.act(chosen, incident, [s for s in seen if s.detection.area in chosen])
        if over:  # after the action: the refusal belongs to the incident it opened
            self._refuse(over, f"the policy's limit of {self.policy.limits.max_areas_per_hour} area(s) per hour "
                               "is reached: contain by hand ('irm contain --area AREA') if the cell decides so")
        return list(chosen)

    def _deepen_step(self, now: datetime) -> None:
        """The policy's stages after the cut (vectors, mobile) for the areas the open incident has cut
        off under this policy but not yet taken through them: once no area waits for its cut."""
        incident = self.incident()
        if incident is None or self.cut_through == self.policy.through_number or self.settings.dry_run:
            return
        acted = {a for e in self.journal.timeline.of_kinds((EventKind.WATCH_TRIGGERED,)) if e["incident_id"] ==
                 incident.id and not e["detail"].get("dry_run") for a in e["detail"].get("areas", [])}
        todo = [a for a in self.policy.areas if a in acted and self.holds(incident, a, self.cut_through)
                and not self.holds(incident, a)
                and time.monotonic() - self.failed_at.get(a, -RETRY_AFTER) >= RETRY_AFTER]
        if todo and self._gate(now, todo):
            self.events.say(f"policy {self.policy.name}: {', '.join(todo)} cut off; now through "
                            f"{self.policy.through}")
            self._run(todo, incident, self.policy.through_number, {}, first=self.cut_through + 1)

    def _quarantine_step(self, now: datetime, seen: list[Seen]) -> None:
        """Quarantine every sub-area that crosses the trigger in an area the open incident already holds
        (the areas' own trigger contained them first; a sub-area never widens the perimeter)."""
        incident = self.incident()
        if incident is None:
            return
        postures = self.journal.stages.postures(incident.id)
        todo: dict[str, dict[str, str]] = {}
        for (area, segment), why in triggered_segments(self.policy, seen, now).items():
            if segment not in {s.qualified for s in self.inv.area(area).sub_areas} or not self.holds(incident, area):
                continue
            if segment in AreaState.from_scopes(area, postures).quarantined or segment in self.dry_acted:
                continue
            if time.monotonic() - self.failed_at.get(segment, -RETRY_AFTER) < RETRY_AFTER:
                continue
            todo.setdefault(area, {})[segment] = why
        if todo and self._gate(now, [s for subs in todo.values() for s in subs]):
            self.quarantine(todo, incident)

    def quarantine(self, todo: dict[str, dict[str, str]], incident: Incident) -> None:
        """Quarantine ``todo`` (area -> sub-area -> why) with the sub-area stage of 'irm contain'."""
        subs = [s for area in todo.values() for s in area]
        self.journal.timeline.add(incident.id, EventKind.WATCH_QUARANTINED, self.settings.operator, None,
                                  policy=self.policy.name, sha256=self.sha256, signers=self.signers,
                                  sub_areas={a: sorted(w) for a, w in todo.items()},
                                  reasons={s: w for area in todo.values() for s, w in area.items()},
                                  dry_run=self.settings.dry_run)
        self.events.say(f"policy {self.policy.name}: {'would quarantine' if self.settings.dry_run else 'quarantining'} "
                        + "; ".join(w for area in todo.values() for w in area.values()))
        if self.settings.dry_run:
            self.dry_acted |= set(subs)
            return
        req = ContainRequest(inventory=self.settings.inventory, operator=self.settings.operator, areas=list(todo),
                             incident_id=incident.id, loop=False, through=0,
                             quarantine={a: set(w) for a, w in todo.items()},
                             confirm_timeout=self.settings.confirm_timeout, lock_wait=LOCK_WAIT)
        try:
            Containment(req, self.inv, self.journal, self.sources, self.events,
                        run=self._stage_runner(), probe=self.probe_management).run()
        except (ContainmentFailed, RunnerError, UserError) as exc:
            for s in subs:
                self.failed_at[s] = time.monotonic()
            self.events.say(f"automatic quarantine of {', '.join(subs)} FAILED: {exc} (retried in "
                            f"{RETRY_AFTER:.0f}s while the trigger holds)")
            return
        self.events.publish(DecisionNeeded(
            incident.id, f"sub-areas quarantined under policy {self.policy.name}", tuple(todo),
            tuple(w for area in todo.values() for w in area.values()),
            "whether to remediate them ('irm remediate'); 'irm watch pause --reason TEXT' stops automatic action",
            self.settings.operator))

    def _sources_health(self, now: datetime) -> None:
        """A source that cannot be read, or has been silent longer than its ``max_silence``, is said once
        (journaled, printed, told to the cell when an incident is open) and again when it comes back: the
        watcher goes on with the others."""
        problems = set(self.sources.problems(now)) | set(self.sensor.problems(now) if self.sensor else ())
        incident = self.incident()
        for problem, cleared in [(p, False) for p in sorted(problems - self.source_problems)] + \
                [(p, True) for p in sorted(self.source_problems - problems)]:
            self.journal.timeline.add(incident.id if incident else None, EventKind.WATCH_SOURCE, self.settings.operator,
                                      None, problem=problem, cleared=cleared)
            text = f"detection source back: {problem}" if cleared else \
                f"{problem}: the watcher goes on with the other sources"
            self.events.say(text)
            if incident is not None and not cleared:
                self.events.publish(DecisionNeeded(
                    incident.id, "a detection source is down", (), (text,),
                    "whether to trust the automatic containment without it (the source's owner to fix it)",
                    self.settings.operator))
        self.source_problems = problems

    def _refuse(self, areas: list[str], reason: str) -> None:
        fresh = [a for a in areas if (a, reason) not in self.reported]
        if not fresh:
            return
        self.reported |= {(a, reason) for a in fresh}
        incident = self.incident()
        self.journal.timeline.add(incident.id if incident else None, EventKind.WATCH_REFUSED, self.settings.operator,
                                  None, policy=self.policy.name, areas=fresh, reason=reason)
        self.events.say(f"NOT contained automatically: {', '.join(fresh)}: {reason}")
        if incident is not None:
            self.events.publish(DecisionNeeded(
                incident.id, "automatic containment held back", tuple(fresh), (reason,),
                f"whether to contain {', '.join(fresh)} by hand", self.settings.operator))

    def act(self, todo: dict[str, str], incident: Incident | None, seen: list[Seen]) -> None:
        opened = incident is None
        if incident is None:
            # an alert's signature is the attacker's text: one the incident would refuse is left out, never
            # a reason for the cut not to happen
            signatures = [s for s, _ in Counter(x.detection.signature for x in seen).most_common()
                          if not text_problem(s, limit=200)][:5]
            spec = IncidentSpec(worm=self.policy.incident.worm, vectors=list(self.policy.incident.vectors),
                                signatures=signatures)
            incident = self.journal.incidents.open(spec, self.settings.operator)
        areas = list(todo)
        self.journal.timeline.add(incident.id, EventKind.WATCH_TRIGGERED, self.settings.operator, None,
                                  policy=self.policy.name, sha256=self.sha256, signers=self.signers, areas=areas,
                                  reasons=todo, through=self.policy.through, dry_run=self.settings.dry_run,
                                  opened_incident=opened)
        stages = ", ".join(p.name for p in STAGES[: self.policy.through_number])
        self.events.say(f"policy {self.policy.name}: {'would contain' if self.settings.dry_run else 'containing'} "
                        f"{', '.join(areas)} ({stages}): " + "; ".join(f"{a}: {w}" for a, w in todo.items()))
        if self.settings.dry_run:
            self.dry_acted |= set(areas)
            return
        self._run(areas, incident, self.cut_through, todo)

    def _run(self, areas: list[str], incident: Incident, through: int, why: dict[str, str], first: int = 1) -> None:
        """The containment stages ``first`` to ``through`` on ``areas``, as 'irm contain' runs them."""
        req = ContainRequest(inventory=self.settings.inventory, operator=self.settings.operator, areas=areas,
                             incident_id=incident.id, loop=False, through=through, first=first,
                             confirm_timeout=self.settings.confirm_timeout, lock_wait=LOCK_WAIT)
        try:
            job = Containment(req, self.inv, self.journal, self.sources, self.events,
                              run=self._stage_runner(), probe=self.probe_management)
            reports = job.run()
        except (ContainmentFailed, RunnerError, UserError) as exc:
            for a in areas:
                self.failed_at[a] = time.monotonic()
            self.events.say(f"automatic containment of {', '.join(areas)} FAILED: {exc} (retried in "
                            f"{RETRY_AFTER:.0f}s while the trigger holds)")
            return
        for r in reports:
            self.events.say(f"automatic containment done: {summary(r)}")
        # told after the cut, never before it: a notification is seconds of exposure (the containment's
        # own outcome went to the cell as it ended)
        self.events.publish(DecisionNeeded(
            incident.id, f"automatic containment under policy {self.policy.name}", tuple(areas),
            tuple(f"{a}: {w}" for a, w in why.items()) or (f"through {STAGES[through - 1].name}",),
            "confirm the perimeter or widen it ('irm contain'); 'irm watch pause --reason TEXT' stops automatic "
            "action", self.settings.operator))

    # -- the service ------------------------------------------------------------------------------------

    def chokepoints(self) -> list[str]:
        """What the policy's cuts change: the edge, and each policy area's gateway."""
        edge = [self.inv.edge.name] if self.inv.edge else []
        gateways = [self.inv.area(a).gateway for a in self.policy.areas]
        return list(dict.fromkeys(edge + gateways))

    def start_warm(self) -> None:
        """Prepare the warm path to the chokepoints: their options resolved by the role, one SSH master
        connection held to each; the stages the tables mark ``warm`` then cut over them. A chokepoint that
        cannot go warm is said, and its cut runs as a play."""
        playbooks = frozenset(p.playbook for p in CONTAINMENT if p.warm)
        devices = [h for h in self.chokepoints() if self.inv.hosts[h].boundary_kind == "cisco_ios"]
        self.warm_path = self.warm_factory(self.settings.inventory, [h for h in self.chokepoints() if h not in devices],
                                           playbooks, self.run_playbook)
        refused = self.warm_path.prepare()
        if devices:  # IOS chokepoints: irm's own netmiko session, held (core.ios_direct)
            self.ios_direct = self.ios_factory(self.inv, self.settings.inventory, playbooks, self.warm_path)
            closed = self.ios_direct.hold(devices)
            opened = [d for d in devices if d not in closed]
            if opened:
                self.events.say(f"IOS direct path: sessions held to {', '.join(opened)}; their cuts start no play")
            for host, why in closed.items():
                self.events.say(f"IOS direct path: no session to {host} yet ({why}); its cut logs in anew")
        if self.warm_path.ready:
            self.events.say(f"warm path: connections held to {', '.join(self.warm_path.ready)}; their cuts start "
                            "no play")
        for host, why in refused.items():
            self.events.say(f"warm path: {host} is cut by a play ({why})")

    def _stage_runner(self) -> runner.PlaybookRunner:
        """What the stages run through: the IOS direct path, the warm path, the plays, as prepared."""
        return self.ios_direct or self.warm_path or self.run_playbook

    def stop_warm(self) -> None:
        if self.ios_direct is not None:
            self.ios_direct.close()
            self.ios_direct = None
        if self.warm_path is not None:
            self.warm_path.close()
            self.warm_path = None

    def keep_warm(self) -> None:
        """Keep the chokepoints' connections open and say a chokepoint irm could not cut (once, and again
        when it answers): the warm path's masters are checked and reopened; the others are reached by a
        play, which keeps Ansible's own SSH connections (ControlPersist) open for their cut."""
        targets = self.chokepoints()
        down: set[str] = set()
        if self.warm_path is not None:
            down |= {h for h, up in self.warm_path.refresh().items() if not up}
            targets = [h for h in targets if h not in self.warm_path.ready]
        if self.ios_direct is not None:
            down |= set(self.ios_direct.refresh())
            targets = [h for h in targets if h not in self.ios_direct.held]
        try:
            if targets:
                result = self.run_playbook("reach", self.settings.inventory,
                                           extravars={"irm_targets": ",".join(targets)})
                down |= {h for h in targets
                         if h not in result.hosts or result.hosts[h].status in ("failed", "unreachable")}
        except (IrmError, OSError) as exc:  # the warm path's own answers stand
            down |= {f"{', '.join(targets)} ({type(exc).__name__}: {exc})"}
        for host in sorted(down - self.unreached):
            self.events.say(f"chokepoint {host} does not answer on its management path: irm watch could not cut there")
        for host in sorted(self.unreached - down):
            self.events.say(f"chokepoint {host} answers again")
        self.unreached = down

    def _warm_loop(self, stop: Callable[[], bool]) -> None:
        while not stop():
            self.keep_warm()
            deadline = time.monotonic() + self.settings.keep_warm
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.5)

    def _sense_loop(self, stop: Callable[[], bool]) -> None:
        """Read the boundaries' counters every ``sensor_interval`` seconds; what rose waits in ``drops``
        for the next evaluation (the journal is written by the evaluating thread only)."""
        assert self.sensor is not None
        while not stop():
            try:
                for drop in self.sensor.poll(skip=self.sensor_skip):
                    self.drops.put(drop)
            # a reading lost, never the thread (its death would be silence); the plan is read from the
            # journal through the thread's own connection, which a busy journal can refuse
            except (IrmError, OSError, ValueError, sqlite3.Error) as exc:
                self.events.say(f"the boundaries' counters could not be read ({type(exc).__name__}: {exc})")
            deadline = time.monotonic() + self.settings.sensor_interval
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.2)

    def serve(self, stop: Callable[[], bool], wait: float = 1.0) -> None:
        """Evaluate at every change of a source's files (and every ``wait`` seconds) until ``stop()``;
        meanwhile, a thread keeps the chokepoints' connections warm."""
        if self.settings.warm and not self.settings.dry_run:
            self.start_warm()
        if self.settings.keep_warm > 0 and not self.settings.dry_run:
            threading.Thread(target=self._warm_loop, args=(stop,), name="irm-watch-warm", daemon=True).start()
        if self.sensor is not None and self.settings.sensor_interval > 0:
            threading.Thread(target=self._sense_loop, args=(stop,), name="irm-watch-sensor", daemon=True).start()
        try:
            with Follower(self.watched_dirs()) as follower:
                while not stop():
                    try:
                        self.step()
                    except (IrmError, OSError, ValueError) as exc:  # one evaluation lost, never the watcher
                        self.events.say(f"this evaluation failed ({type(exc).__name__}: {exc}); the next one "
                                        f"runs in {wait:.0f}s or at the next detection")
                    follower.wait(wait)
        finally:
            self.stop_warm()

    def watched_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for spec in self.sources.specs:
            if spec.kind == "lab_av":
                dirs += [Path(h.av_log).parent for h in self.inv.hosts.values() if h.kind == "area" and h.av_log]
            elif spec.path:
                dirs.append(Path(spec.path).parent)
        return list(dict.fromkeys(d for d in dirs if d.is_dir()))


_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100


class Follower:
    """Wakes up when a file in one of ``dirs`` is written, created or moved in (Linux inotify); without
    inotify, waits the timeout (the watcher reads the sources every second regardless)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self.fd = -1

    def __enter__(self) -> Follower:
        try:
            libc: Any = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        except (OSError, AttributeError):
            return self
        if fd < 0:
            return self
        self.fd = fd
        for d in self.dirs:
            libc.inotify_add_watch(fd, os.fsencode(str(d)), _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def wait(self, timeout: float) -> bool:
        """True when a file changed before ``timeout`` seconds."""
        if self.fd < 0:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        time.sleep(0.02)  # let the writer finish the line; then drain every event at once
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True
