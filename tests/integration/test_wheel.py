"""irm as a SOC installs it: the wheel, built from this checkout and installed into a fresh virtualenv,
run from an empty directory with no checkout on its path and IRM_HOME unset. It carries its playbooks,
the irm.response collection and its Ansible settings; it validates the lab's inventory, dry-runs a
containment and contains an area for real, checked by traffic.

The new virtualenv gets irm from the wheel only; its third-party dependencies (ansible, ansible-runner,
pydantic, ...) are the test virtualenv's, added by a path file, so that the test needs no download.
ansible-playbook and ansible-runner (an execution node runs the controller's) run under the new virtualenv's
interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core.inventory.load import load_inventory
from tests.conftest import BIN, LAB_INVENTORY, ROOT, built_lab
from tests.integration.lab_tools import matrix, probe

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, Path]]:
    """(the new virtualenv's bin directory, an empty working directory). Outside /tmp: the lab's execution
    node runs the controller's ansible-runner at the controller's path, and has a /tmp of its own."""
    tmp = Path(tempfile.mkdtemp(prefix="irm-wheel-", dir="/var/tmp"))
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(ROOT)], check=True, capture_output=True, cwd=tmp)
    (wheel,) = dist.glob("irm_orchestrator-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, cwd=tmp)
    purelib = Path(subprocess.run([str(bindir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                   "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for script in ("ansible-playbook", "ansible-config", "ansible-inventory", "ansible-runner"):  # its interpreter
        body = (BIN / script).read_text().split("\n", 1)[1]
        (bindir / script).write_text(f"#!{bindir / 'python'}\n{body}")
        (bindir / script).chmod(0o755)
    empty = tmp / "empty"
    empty.mkdir()
    try:
        yield bindir, empty
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(installed: tuple[Path, Path], *args: str, timeout: float = 600,
         env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    bindir, empty = installed
    env = {k: v for k, v in os.environ.items() if k not in ("IRM_HOME", "PYTHONPATH", "ANSIBLE_CONFIG")}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", COLUMNS="200",
               IRM_OPERATOR="op-wheel", **(env_extra or {}))
    return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True, cwd=empty, env=env,
                          timeout=timeout, check=False)


def test_the_installed_package_carries_its_content_and_no_checkout_is_on_its_path(
        installed: tuple[Path, Path]) -> None:
    bindir, _ = installed
    where = _run(installed, "python", "-c", "import orchestrator, sys; print(orchestrator.__file__); "
                 f"print(any(p.rstrip('/') == {str(ROOT)!r} for p in sys.path))")
    module, on_path = where.stdout.split()
    assert module.startswith(str(bindir.parent)) and on_path == "False", where.stdout
    version = _run(installed, "irm", "--version")
    assert version.returncode == 0, version.stderr
    content = version.stdout.splitlines()[-1].removeprefix("content ")
    assert content.startswith(str(bindir.parent)) and content.endswith("orchestrator/content"), version.stdout
    assert "irm.response collection 0.1.0" in version.stdout
    for needed in ("playbooks/contain_1_internet_cut.yml", "ansible.cfg",
                   "collections/ansible_collections/irm/response/plugins/modules/irm_nft.py"):
        assert (Path(content) / needed).is_file(), needed
    valid = _run(installed, "irm", "validate", "-i", str(LAB_INVENTORY))
    assert valid.returncode == 0 and "valid (4 areas" in valid.stdout, valid.stdout + valid.stderr
    # a new user's first steps: a starter of their own, validated through its irm.toml
    starter = installed[1].parent / "starter"
    assert _run(installed, "irm", "init", str(starter)).returncode == 0
    mine = _run(installed, "irm", "validate", env_extra={"IRM_CONFIG": str(starter / "irm.toml"), "IRM_JOURNAL": ""})
    assert mine.returncode == 0 and "valid (1 areas" in mine.stdout, mine.stdout + mine.stderr
    # the CACAO schemas and the board's page ship as package data: the export validates against them
    cacao = _run(installed, "irm", "export", "cacao", "-i", str(starter / "inventory"), "--out", "plan.json",
                 env_extra={"IRM_JOURNAL": ""})
    assert cacao.returncode == 0 and "valid against the OASIS CACAO v2 schemas" in cacao.stdout, cacao.stderr
    board = _run(installed, "python", "-c", "from orchestrator.board import web; "
                 "print(all((web.HERE / p).is_file() for p in ('static/board.js', 'static/board.css', "
                 "'templates/board.html.j2')))")
    assert board.stdout.strip() == "True", board.stdout + board.stderr


def test_the_installed_package_contains_an_area_checked_by_traffic(installed: tuple[Path, Path]) -> None:
    journal = installed[1] / "journal.db"
    with built_lab(LAB_INVENTORY):
        inv = load_inventory(LAB_INVENTORY)
        probes = [probe(inv, "x-ws11", "hq-ws1", 4445), probe(inv, "x-ws11", "inet-web", 80)]
        assert set(matrix(inv, probes).values()) == {"open"}
        opened = _run(installed, "irm", "incident", "open", "--worm", "W", "--vector", "tcp/4445", "--journal",
                      str(journal))
        assert opened.returncode == 0, opened.stderr
        contain = ("irm", "contain", "--area", "subsidiary-x", "--yes", "--no-loop", "-i", str(LAB_INVENTORY),
                   "--journal", str(journal), "--confirm-timeout", "20")
        dry = _run(installed, *contain, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert set(matrix(inv, probes).values()) == {"open"}  # a dry run changes nothing
        real = _run(installed, *contain)
        assert real.returncode == 0, real.stdout + real.stderr
        assert "open" not in matrix(inv, probes).values()
        verify = _run(installed, "irm", "status", "--verify", "-i", str(LAB_INVENTORY), "--journal", str(journal))
        assert verify.returncode == 0, verify.stdout + verify.stderr
