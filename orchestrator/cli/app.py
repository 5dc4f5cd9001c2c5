"""The typer application, its sub-applications and the consoles; command modules register on them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from orchestrator import __version__

# Tracebacks never show local variables: they may hold inventory secrets.
HELP = {"help_option_names": ["-h", "--help"]}
EXIT_CODES = ("Exit codes: 0 done; 1 declined at a prompt, a check failed or drift; 2 bad input, nothing applied; "
              "3 the environment (journal, lab); 4 a stage failed; 5 the spread did not stop, or hosts left for manual "
              "work; 6 hosts not reached; 70 a defect in irm.")
app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="irm: worm infection response orchestrator.", context_settings=HELP, epilog=EXIT_CODES)
lab_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="Build, inspect and tear down the namespace lab.")
incident_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="Record and inspect incidents (the worm, its vectors).")
action_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="Action items of the crisis report (capitalize).")
node_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="Execution nodes: check them, install irm's runtime on them.")
config_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="irm's configuration file (irm.toml) and its settings.")
export_app = typer.Typer(
    context_settings=HELP, no_args_is_help=True, help="The response in a standard form for other tools (CACAO v2).")
for sub, name in ((config_app, "config"), (lab_app, "lab"), (incident_app, "incident"), (action_app, "action"),
                  (node_app, "node"), (export_app, "export")):
    app.add_typer(sub, name=name)

# Markup off: worm names, notes, operator names and Ansible messages are printed as the characters they
# are (a "[/]" in a note must neither crash a command nor vanish); irm's own styling uses Text styles.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        console.print(_versions())
        raise typer.Exit()


def _versions() -> str:
    """irm's version, ansible-core's and the irm.response collection's, and where irm's content is read."""
    import re

    from ansible import __version__ as ansible_version

    from orchestrator.core import paths

    galaxy = paths.COLLECTIONS / "ansible_collections" / "irm" / "response" / "galaxy.yml"
    try:
        found = re.search(r"^version:\s*(\S+)", galaxy.read_text(encoding="utf-8"), re.MULTILINE)
        collection = found.group(1) if found else "unknown"
    except OSError:
        collection = "missing"
    return (f"irm {__version__}\nansible-core {ansible_version}\nirm.response collection {collection}\n"
            f"content {paths.PROJECT_ROOT}")
