"""The one handler: run the command, map the error tree to exit codes (``orchestrator.core.errors``), and
turn anything else into one line plus a crash file for the bug report. Imports every command module
top-down, so each registers its commands on the app."""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from orchestrator import __version__
from orchestrator.cli.app import app, console, err_console
from orchestrator.core.errors import INTERNAL_ERROR, INTERRUPTED, Declined, IrmError, JournalError, UserError

# The command modules, in the order `irm --help` lists them (the IRM order); each registers on the app.
COMMAND_MODULES = ("init", "validate", "prepare", "identify", "incident", "contain", "watch", "status", "remediate",
                   "recover", "report", "export", "serve", "node", "lab", "config")
for _module in COMMAND_MODULES:
    importlib.import_module(f"orchestrator.cli.{_module}")


def main() -> None:
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    try:
        command = typer.main.get_command(app)
        tidy_help(command)
        repeated = repeated_option(command, sys.argv[1:])
        if repeated:
            raise UserError(repeated)
        from orchestrator.core import config

        code = command.main(args=sys.argv[1:], prog_name="irm", standalone_mode=False,
                            default_map=config.default_map(config.load(), command))
    except typer.Abort:  # Ctrl-C or end of input at a prompt: declined, nothing done
        code = _fail(Declined("aborted at the prompt: nothing was done"))
    except IrmError as exc:
        code = _fail(exc)
    except sqlite3.Error as exc:  # only the journal speaks SQLite: disk full, file removed, locked for long
        code = _fail(JournalError(f"the journal cannot be used: {exc}"))
    except KeyboardInterrupt:
        _error("irm: interrupted")
        code = INTERRUPTED
    except Exception as exc:
        code = _unexpected(exc)
    sys.exit(code if isinstance(code, int) else 0)


def tidy_help(command: Any) -> None:
    """Help that reads well at any terminal width: the line breaks inside a docstring's paragraph become
    spaces (the terminal wraps), flags show no type, arguments show their name in capitals."""
    import inspect

    stack = [command]
    while stack:
        cmd = stack.pop()
        if cmd.help:
            cmd.help = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(cmd.help).split("\n\n"))
        for param in cmd.params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif param.param_type_name == "argument" and param.name:
                param.metavar = param.name.upper()
        cmd.get_help_option = _typeless(cmd.get_help_option)
        stack.extend(getattr(cmd, "commands", {}).values())


def _typeless(get_help_option: Any) -> Any:
    def wrapped(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return wrapped


def repeated_option(command: Any, args: list[str]) -> str | None:
    """A single-valued option given more than once (click would keep the last value and silently drop
    the others): the problem, naming the command and the option; None when there is none. Walks the
    command line as click does: into sub-commands, over each option's value, stopping at ``--``."""
    path: list[str] = ["irm"]
    counts: dict[str, int] = {}
    i = 0
    while i < len(args):
        options = {o: p for p in command.params if getattr(p, "opts", None) is not None and p.param_type_name
                   == "option" for o in (*p.opts, *p.secondary_opts)}
        token = args[i]
        if token == "--":
            return None
        name, eq, _ = token.partition("=")
        if name in options:
            param = options[name]
            takes_value = not param.is_flag and not param.count
            if takes_value and not param.multiple:
                counts[param.name] = counts.get(param.name, 0) + 1
                if counts[param.name] > 1:
                    where = " ".join(path)
                    return (f"{where}: {name} is given more than once, and it takes one value (see "
                            f"'{where} --help')")
            i += 2 if takes_value and not eq else 1
            continue
        subcommands = getattr(command, "commands", None)
        if not token.startswith("-") and subcommands and token in subcommands:
            command, counts = subcommands[token], {}
            path.append(token)
        i += 1
    return None


def _fail(exc: IrmError) -> int:
    for problem in exc.problems:
        _error(f"irm: error: {problem}")
    return exc.exit_code


def _unexpected(exc: Exception) -> int:
    if _is_usage_error(exc):  # the command line itself: one line, like every other refusal
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "irm"
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            console.print(ctx.get_help(), markup=False, highlight=False)
            return 2
        message = exc.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
        _error(f"irm: error: {where}: {message} (see '{where} --help')")
        return 2
    if os.environ.get("IRM_DEBUG"):
        raise exc
    # a defect in irm: one line here, the traceback in a file for the bug report
    where = _crash_file(exc)
    _error(f"irm: internal error (a defect in irm, not in your input): {type(exc).__name__}: "
           f"{_one_line(str(exc))}; details for the bug report: {where}")
    return INTERNAL_ERROR


def _is_usage_error(exc: Exception) -> bool:
    """Click's UsageError (typer vendors its own click, so matched by class name and module)."""
    return any(c.__name__ == "UsageError" and c.__module__.endswith("click.exceptions") for c in type(exc).__mro__)


def _error(line: str) -> None:
    from orchestrator.core.safetext import one_line

    err_console.print(one_line(line), markup=False, highlight=False, soft_wrap=True)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _crash_file(exc: BaseException) -> str:
    """The traceback (no local variables: they may hold secrets) in a 0600 file under the state
    directory, or the temporary directory when that is not writable."""
    import tempfile
    import traceback

    from orchestrator.core.journal import DEFAULT_DIR

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
