"""The journal: one embedded SQLite file (WAL, synchronous=FULL) holding what irm did and saw during
incidents, as a few repositories over one connection, each returning typed rows (``rows``):

- ``journal.incidents``: incidents opened and closed, the one an action works on;
- ``journal.timeline``: the events of every incident, each detail validated against its kind's model;
- ``journal.stages``: the stages the phases run, their hosts' results, the postures they set, their
  job events;
- ``journal.hosts``: whether each host answers, what it enforces, operator exclusions, planned policies;
- ``journal.remediation``: remediation plans and each host's state;
- ``journal.decisions``: management's signed approvals, the crisis cell's notes and action items;
- ``journal.locks``: one running action per area, and the runs whose changes a token names.

Every write is its own committed transaction, so a crash or kill never loses what was already
journaled; a change and the event that tells it are one transaction. The schema evolves by numbered
migrations (``store``); rows are never rewritten except a stage's end and state, a posture's current
value and lock ownership.
"""

from __future__ import annotations

import os

from orchestrator.core.journal.decisions import Decisions
from orchestrator.core.journal.hosts import Hosts
from orchestrator.core.journal.incidents import Incidents
from orchestrator.core.journal.locks import BOUNDARIES_LOCK, Locks, proc_start
from orchestrator.core.journal.remediation import Remediation
from orchestrator.core.journal.rows import (
    ActionRow,
    ApprovalRow,
    EventRow,
    HostResult,
    HostRow,
    Incident,
    LockRow,
    NoteRow,
    RemediationRow,
    Stage,
)
from orchestrator.core.journal.stages import Stages
from orchestrator.core.journal.store import DEFAULT_DIR, DEFAULT_PATH, Store, machine_id, now
from orchestrator.core.journal.timeline import Timeline

__all__ = ["BOUNDARIES_LOCK", "DEFAULT_DIR", "DEFAULT_PATH", "ActionRow", "ApprovalRow", "EventRow", "HostResult",
           "HostRow", "Incident", "Journal", "LockRow", "NoteRow", "RemediationRow", "Stage", "default_operator",
           "machine_id", "now", "proc_start"]


class Journal(Store):
    """The journal file and its repositories (``Journal(path)`` writes and migrates; ``Journal.reader``
    opens an existing journal read-only)."""

    incidents: Incidents
    timeline: Timeline
    stages: Stages
    hosts: Hosts
    remediation: Remediation
    decisions: Decisions
    locks: Locks

    def _opened(self) -> None:
        self.incidents = Incidents(self)
        self.timeline = Timeline(self)
        self.stages = Stages(self)
        self.hosts = Hosts(self)
        self.remediation = Remediation(self)
        self.decisions = Decisions(self)
        self.locks = Locks(self)


def default_operator(given: str | None = None) -> str:
    """Who runs this: ``--operator`` / IRM_OPERATOR, else the login name; one plain line of text."""
    from orchestrator.core.safetext import check_text

    name = given or os.environ.get("IRM_OPERATOR") or os.environ.get("SUDO_USER") or os.environ.get("USER") or "root"
    return check_text(name, "--operator (or IRM_OPERATOR)", limit=100)
