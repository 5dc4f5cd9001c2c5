"""The error tree. ``UserError`` is anything an operator can fix: the CLI prints its message (one line
per problem) and exits non-zero, never with a traceback. Anything else is a defect in irm."""

from __future__ import annotations


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


class LabError(UserError):
    """The lab cannot be built, found or torn down."""

    exit_code = 3


class RunnerError(IrmError):
    """ansible-runner could not run a playbook at all (not a host failure)."""
