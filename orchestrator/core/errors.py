"""The error tree, and the only place exit codes are defined.

``UserError`` is anything an operator can fix: the CLI prints its message (one line per problem) and
exits 2 (bad input) or 3 (the environment), never with a traceback. ``Outcome`` is a command that ran
and whose result is a non-zero status (declined, drift, hosts not reached...): what happened was
already printed, the handler only maps it to its code. Anything else is a defect in irm: exit
``INTERNAL_ERROR`` with where the details were written for a bug report. One handler
(``orchestrator.cli.entry``) maps the tree to exit codes.
"""

from __future__ import annotations

INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h): a defect in irm, not in its input
INTERRUPTED = 130


class IrmError(Exception):
    """Root of every error irm raises on purpose: ``problems`` (one line each) and an exit code."""

    exit_code = 2

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        super().__init__("\n".join(problems))


class UserError(IrmError):
    """A problem the operator can fix; ``problems`` holds one line per problem."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*(problems or ("unknown error",)))


class InventoryError(UserError):
    """The inventory does not follow the irm schema."""


class UnknownNameError(UserError):
    """An area, sub-area or host name typed by the operator does not exist."""


class EnvironmentProblem(UserError):
    """Not the operator's input but the machine: the journal unreadable or foreign, the lab missing."""

    exit_code = 3


class JournalError(EnvironmentProblem):
    """The journal file cannot be used (not SQLite, truncated, read-only, another application's)."""


class LabError(EnvironmentProblem):
    """The lab cannot be built, found or torn down."""


class RunnerError(IrmError):
    """ansible-runner could not run a playbook at all (not a host failure); the stage was journaled failed."""

    exit_code = 4


class Outcome(IrmError):
    """The command ran; its result maps to a non-zero exit status. Already reported on the console;
    ``problems``, if any, are printed as error lines."""

    exit_code = 1


class Declined(Outcome):
    """The operator answered no at a prompt: nothing was changed."""


class Drift(Outcome):
    """``status --verify``: some host does not enforce what the journal says."""


class CheckFailed(Outcome):
    """A lab check found paths closed or hosts not answering."""


class HostFailures(Outcome):
    """A host-level stage failed on some hosts (the boundaries still hold)."""

    exit_code = 4


class SpreadNotStopped(Outcome):
    """Detections kept coming after containment for longer than ``--max-wait``."""

    exit_code = 5


class HostsUnreached(Outcome):
    """Done where the hosts answered; some did not and are protected by the boundary only."""

    exit_code = 6


class CanaryFailed(UserError):
    """A canary did not verify: the deployment stopped before touching any other host."""

    exit_code = 4


class RemediationIncomplete(UserError):
    """The run finished, but some hosts need manual work or failed verification."""

    exit_code = 5


class ContainmentFailed(UserError):
    """A stage failed on some host; the message says what happened and what was restored."""

    exit_code = 4


class RecoveryHalted(UserError):
    """A step's soak saw a new infection (previous posture restored) or its paths did not answer."""

    exit_code = 4
