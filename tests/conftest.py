"""Shared fixtures. Lab fixtures build real namespace labs and always tear them down (``finally``)."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "collections" / "ansible_collections" / "irm" / "response"  # the roles and modules
# The shipped lab, or lane B's copy of it (scripts/lab_lanes.py: its own lab name, run in a namespace of its own)
LAB_INVENTORY = Path(os.environ.get("IRM_TEST_LAB_INVENTORY") or ROOT / "inventories" / "lab")
MINI_INVENTORY = ROOT / "tests" / "fixtures" / "mini"
BIN = Path(sys.executable).parent
os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
# irm's cache (inventory snapshots, the warm path's kept options) of this test process only: what one
# developer's earlier runs kept never decides how a test's stages run, and nothing is left behind
if "IRM_CACHE_DIR" not in os.environ:
    os.environ["IRM_CACHE_DIR"] = tempfile.mkdtemp(prefix="irm-test-cache-")
    atexit.register(shutil.rmtree, os.environ["IRM_CACHE_DIR"], True)


FAULTS = ROOT / "tests" / "plugins" / "faults"


def module_util(name: str) -> ModuleType:
    """One of the collection's module_utils (plain Python without Ansible imports), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, COLLECTION / "plugins" / "module_utils" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def irm(*args: str, check: bool = False, timeout: float = 300, input_text: str | None = None,
        env: dict[str, str] | None = None, faults: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``irm`` console script, as an operator would; ``faults`` loads the test-only fault
    plugin (tests/plugins/faults) into that process with the given settings."""
    full = {**os.environ, "COLUMNS": "200", **(env or {})}
    if faults:
        full.update(faults, PYTHONPATH=os.pathsep.join(filter(None, [str(FAULTS), full.get("PYTHONPATH")])))
    proc = subprocess.run([str(BIN / "irm"), *args], capture_output=True, text=True, timeout=timeout,
                          input=input_text, cwd=ROOT, env=full)
    if check and proc.returncode != 0:
        raise AssertionError(f"irm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def lab_capable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for cmd in ("ip", "nft", "ssh-keygen"):
        if shutil.which(cmd) is None and not Path(f"/usr/sbin/{cmd}").exists():
            return f"{cmd} is missing (run make setup)"
    if not Path("/usr/sbin/sshd").exists():
        return "sshd is missing (run make setup)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under `make test` (IRM_REQUIRE_LAB=1) a lab test that cannot run fails loudly, never skips.
    reason = lab_capable()
    if reason is None or os.environ.get("IRM_REQUIRE_LAB"):
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


# subsidiary-z (the area behind its execution node) starts patched in every test lab: a worm seeded
# elsewhere must not find a fourth area the test never contains. test_node_area makes it vulnerable again.
NODE_AREA_HOSTS = ("z-ws11", "z-ws21")


@contextlib.contextmanager
def built_lab(inventory: Path = LAB_INVENTORY) -> Iterator[Path]:
    """A lab built for the caller and always torn down, also when the caller fails."""
    irm("lab", "down", "-i", str(inventory))  # a previous crashed run must not poison this one
    try:
        irm("lab", "up", "-i", str(inventory), check=True)
        if inventory == LAB_INVENTORY:
            from orchestrator.core.inventory.load import load_inventory

            inv = load_inventory(inventory)
            for name in NODE_AREA_HOSTS:
                (Path(inv.hosts[name].state_dir) / "patched").write_text("test\n")
        yield inventory
    finally:
        irm("lab", "down", "-i", str(inventory))


def _build(inventory: Path) -> Iterator[Path]:
    with built_lab(inventory) as path:
        yield path


@pytest.fixture(scope="module")
def lab() -> Iterator[Path]:
    """The shipped lab, built once per test module (about a second) and always torn down."""
    yield from _build(LAB_INVENTORY)


@pytest.fixture()
def fresh_lab() -> Iterator[Path]:
    """The shipped lab for one test only (a worm test leaves infections behind)."""
    yield from _build(LAB_INVENTORY)


@pytest.fixture()
def mini_lab() -> Iterator[Path]:
    yield from _build(MINI_INVENTORY)


@pytest.fixture()
def scratch_ns() -> Iterator[str]:
    """A bare namespace of the test's own (no address, no route: only its nftables is used), removed with
    every process left in it (a timer a test left armed)."""
    name = f"irmns-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split():
            os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], check=False)
