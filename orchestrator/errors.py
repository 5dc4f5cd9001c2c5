"""The error tree. ``UserError`` is anything an operator can fix: the CLI prints its message (one line
per problem) and exits 2 (bad input) or 3 (the environment), never with a traceback. Anything else is
a defect in irm: exit ``INTERNAL_ERROR`` with where the details were written for a bug report."""

from __future__ import annotations

INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h): a defect in irm, not in its input


class IrmError(Exception):
    """Root of every error irm raises on purpose."""


class UserError(IrmError):
    """A problem the operator can fix; ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems or ("unknown error",)
        super().__init__("\n".join(self.problems))


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
    """ansible-runner could not run a playbook at all (not a host failure)."""
