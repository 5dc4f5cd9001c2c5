from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, irm


def test_python_dash_m_orchestrator_is_the_irm_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "--version"], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == irm("--version").stdout.strip() == "irm 0.1.0"


def test_validate_the_shipped_inventory() -> None:
    proc = irm("validate")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "inventories/lab: valid (2 areas, 5 segments, 15 managed hosts)"


def test_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    proc = irm("contain-everything")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "No such command" in proc.stderr
