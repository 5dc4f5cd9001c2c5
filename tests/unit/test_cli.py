from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BIN, ROOT, irm


def test_python_dash_m_orchestrator_is_the_irm_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "--version"], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0 and proc.stdout == irm("--version").stdout
    import ansible

    assert proc.stdout.splitlines() == ["irm 0.1.0", f"ansible-core {ansible.__version__}",
                                        "irm.response collection 0.1.0", f"content {ROOT}"]


def test_validate_the_shipped_inventory() -> None:
    proc = irm("validate")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "inventories/lab: valid (4 areas, 9 segments, 23 managed hosts)"


def test_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    proc = irm("contain-everything")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "No such command" in proc.stderr


def test_text_from_operators_prints_as_typed_never_as_markup(tmp_path: Path) -> None:
    """A worm name, note, action or operator of "[/]" neither crashes a command nor vanishes; balanced
    tags stay visible."""
    journal = str(tmp_path / "j.db")
    worm = "[bold]Wanna[/bold]Cry [/]"
    opened = irm("incident", "open", "--worm", worm, "--vector", "tcp/445", "--journal", journal,
                 env={"IRM_OPERATOR": "[red]mallory[/]"})
    assert opened.returncode == 0, opened.stderr
    assert f"incident 1 opened: {worm}, vectors tcp/445" in opened.stdout
    added = irm("action", "add", "[link=http://x]patch[/link] [/]", "--owner", "[/]", "--journal", journal)
    assert added.returncode == 0, added.stderr
    for args in (("incident", "list"), ("action", "list"), ("status",)):
        proc = irm(*args, "--journal", journal)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    status = irm("status", "--journal", journal).stdout
    assert worm in status and "[red]mallory[/]" in status
    actions = irm("action", "list", "--journal", journal).stdout
    assert "[link=http://x]patch[/link]" in actions.replace("\n", "").replace("│", "").replace(" ", "") or \
        "[link=http://x]patch[/link]" in actions


def test_a_repeated_single_valued_option_is_named_and_repeatable_ones_pass() -> None:
    import typer

    from orchestrator.cli.app import app
    from orchestrator.cli.entry import repeated_option

    command = typer.main.get_command(app)
    assert repeated_option(command, ["approve", "--area", "a", "--area=b"]) == (
        "irm approve: --area is given more than once, and it takes one value (see 'irm approve --help')")
    for several in ("contain", "remediate", "recover"):  # these take several areas
        assert repeated_option(command, [several, "--area", "a", "--area=b"]) is None
    # repeatable options, flags, an option's value that looks like an option, and anything after --
    assert repeated_option(command, ["incident", "open", "--worm", "W", "--vector", "tcp/1", "--vector", "tcp/2"]) \
        is None
    assert repeated_option(command, ["contain", "--area", "a", "--yes", "--yes"]) is None
    assert repeated_option(command, ["note", "x", "--operator", "--operator"]) is None  # the first one's value
    assert repeated_option(command, ["contain", "--area", "a", "--", "--area", "b"]) is None
    # the same option name on two levels of the command line is counted per command
    assert repeated_option(command, ["incident", "list", "--journal", "j"]) is None


def test_before_the_first_incident_the_views_say_so_and_exit_0(tmp_path: Path) -> None:
    none = str(tmp_path / "journal.db")
    for argv in (["status"], ["incident", "list"], ["action", "list"], ["report", "--out", str(tmp_path / "r")]):
        proc = irm(*argv, "--journal", none)
        assert proc.returncode == 0 and "no incident yet" in proc.stdout, (argv, proc.stdout, proc.stderr)
    assert irm("status", "--json", "--journal", none).stdout.strip() == '{"incident": null}'
    assert irm("incident", "list", "--json", "--journal", none).stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []  # nothing created
    # validate with IRM_JOURNAL naming a journal not created yet: no incident yet, not an error
    proc = irm("validate", env={"IRM_JOURNAL": none})
    assert proc.returncode == 0, proc.stderr
    assert irm("validate", "--journal", none).returncode == 2  # an explicit journal that does not exist


def test_minus_h_is_help_on_every_command() -> None:
    for argv in (["-h"], ["contain", "-h"], ["incident", "open", "-h"], ["lab", "-h"]):
        proc = irm(*argv)
        assert proc.returncode == 0 and "Usage: irm" in proc.stdout, (argv, proc.stderr)


def test_irm_lab_without_the_lab_extra_says_how_to_get_it() -> None:
    code = ("import sys; sys.modules['aiosmtpd'] = None; sys.argv = ['irm', 'lab', 'status']\n"
            "from orchestrator.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("irm: error: irm lab needs the lab's dependencies (aiosmtpd missing): pip install "
                                   "'irm-orchestrator[lab]'")


def _complete(words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_IRM_COMPLETE": "complete_bash",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['irm']\nfrom orchestrator.cli import main; "
                           "main()"], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    return proc.stdout.split()


def test_shell_completion_offers_commands_options_areas_and_hosts() -> None:
    assert {"recover", "remediate", "report"} <= set(_complete("irm re"))
    assert "--quiet-window" in _complete("irm contain --qu")
    assert _complete("irm contain -i inventories/lab --area sub") == ["subsidiary-x", "subsidiary-y", "subsidiary-z"]
    assert _complete("irm lab infect x-ws2") == ["x-ws21", "x-ws22"]
    show = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['irm', '--show-completion', 'bash']\n"
                           "from orchestrator.cli import main; main()"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert "_IRM_COMPLETE=complete_bash" in show.stdout, show.stdout + show.stderr


def test_every_command_s_help_has_an_example_and_the_root_the_exit_codes() -> None:
    import typer

    from orchestrator.cli import entry  # noqa: F401  (registers every command)
    from orchestrator.cli.app import app

    missing = []

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            runs = getattr(sub, "invoke_without_command", False) or not hasattr(sub, "commands")
            if runs and "Example: irm " not in (sub.help or ""):
                missing.append(" ".join([*path, name]))
            walk(sub, [*path, name])
    root = typer.main.get_command(app)
    walk(root, [])
    assert not missing, missing
    assert "Exit codes: 0 done" in (root.epilog or "")


def test_help_reads_well_at_any_width() -> None:
    """No line break inside a help paragraph (the terminal wraps, at any width), no type shown on a flag:
    every command's help printed at two widths."""
    import typer

    from orchestrator.cli.app import app
    from orchestrator.cli.entry import tidy_help

    root = typer.main.get_command(app)
    tidy_help(root)
    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        help_text = getattr(cmd, "help", None) or ""
        assert all("\n" not in p for p in help_text.split("\n\n")), (path, help_text)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
    walk(root, [])
    assert ["mark-manual"] in paths and ["remediate", "mark-manual"] not in paths  # remediate is one command
    for path in (p for p in paths if p in ([], ["contain"], ["remediate"], ["lab", "build"], ["recover"])):
        for width in ("60", "200"):
            proc = subprocess.run([str(BIN / "irm"), *path, "-h"], capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "COLUMNS": width}, check=False)
            assert proc.returncode == 0 and "<bool>" not in proc.stdout, proc.stdout + proc.stderr
            assert "Usage: irm" in proc.stdout
