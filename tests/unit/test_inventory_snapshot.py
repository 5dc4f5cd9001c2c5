"""The inventory snapshot the read-only views use: the same inventory as through Ansible, no Ansible
import when nothing changed, a fresh load on any change, and never for what may change with nothing
on disk changing or for secrets."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.inventory import snapshot
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.validate import RawInventory
from tests.conftest import LAB_INVENTORY, ROOT

_PROBE = """
import json, sys
from orchestrator.core.inventory.load import load_inventory
from orchestrator.core.inventory.validate import RawInventory
inv = load_inventory(sys.argv[1], snapshot=True)
print(json.dumps({"ansible": "ansible" in sys.modules, "hosts": sorted(inv.hosts),
                  "x_gateway": inv.areas["subsidiary-x"].gateway, "erp": str(inv.hosts["hq-erp"].address)}))
"""


def _load_in_fresh_process(inventory: Path, cache: Path) -> dict[str, object]:
    env = {**os.environ, "IRM_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(inventory)], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(LAB_INVENTORY, dest)
    return dest


def test_an_unchanged_inventory_loads_from_its_snapshot_without_ansible(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _load_in_fresh_process(inventory, cache)
    second = _load_in_fresh_process(inventory, cache)
    assert first["ansible"] is True and second["ansible"] is False
    assert {k: v for k, v in first.items() if k != "ansible"} == {k: v for k, v in second.items() if k != "ansible"}
    files = list(cache.glob("inventory-*.json"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    assert oct(cache.stat().st_mode & 0o777) == "0o700"


def test_any_change_to_a_file_loads_through_ansible_again(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _load_in_fresh_process(inventory, cache)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("198.18.16.10", "198.18.16.14"))  # hq-erp's address
    changed = _load_in_fresh_process(inventory, cache)
    assert changed["ansible"] is True and changed["erp"] == "198.18.16.14"
    assert len(list(cache.glob("inventory-*.json"))) == 1  # the older snapshot is gone
    assert _load_in_fresh_process(inventory, cache)["ansible"] is False


def test_a_same_size_rewrite_with_the_same_time_loads_through_ansible_again(inventory: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _load_in_fresh_process(inventory, cache)
    hosts = inventory / "hosts.yml"
    st = hosts.stat()
    hosts.write_text(hosts.read_text().replace("198.18.16.10", "198.18.16.19"))  # same length
    os.utime(hosts, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same modification time
    assert hosts.stat().st_size == st.st_size and hosts.stat().st_mtime_ns == st.st_mtime_ns
    changed = _load_in_fresh_process(inventory, cache)
    assert changed["ansible"] is True and changed["erp"] == "198.18.16.19"


@pytest.mark.parametrize("text", [
    "irm_note: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3132\n",
    "irm_site: \"{{ lookup('env', 'SITE') }}\"\n",
    "irm_site: \"{{ now() }}\"\n",
])
def test_no_snapshot_of_vault_values_or_templates_that_call_something(inventory: Path, tmp_path: Path,
                                                                       text: str) -> None:
    (inventory / "group_vars" / "hq.yml").write_text("---\n" + text)
    snapshot.write(inventory, snapshot.key(inventory), RawInventory(source=str(inventory), groups={}, hosts={}))
    assert not list(snapshot.cache_dir().glob("inventory-*.json"))


def test_no_snapshot_of_an_executable_inventory(inventory: Path) -> None:
    script = inventory / "hosts.yml"
    script.chmod(0o755)
    assert snapshot.key(inventory) is None


def test_a_damaged_snapshot_is_ignored(inventory: Path) -> None:
    load_inventory(inventory, snapshot=True)
    (only,) = snapshot.cache_dir().glob("inventory-*.json")
    only.write_text("{not json")
    assert snapshot.read(inventory, snapshot.key(inventory)) is None
    assert load_inventory(inventory, snapshot=True).hosts == load_inventory(inventory).hosts


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRM_CACHE_DIR", str(tmp_path / "own-cache"))


def test_only_irms_own_files_in_its_own_directory_are_read_or_written(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What the cache keeps decides where irm connects and what it runs there (the warm path's options): a
    link, a FIFO, a file others may write or a directory that is not irm's own is never read or written."""
    cache, source = tmp_path / "cache", tmp_path / "inv"
    monkeypatch.setenv("IRM_CACHE_DIR", str(cache))
    snapshot.store("warm", source, "k" * 64, {"gw-x": {"address": "198.18.1.1"}})
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    kept = next(cache.glob("warm-*.json"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert snapshot.load("warm", source, "k" * 64) == {"gw-x": {"address": "198.18.1.1"}}

    planted = tmp_path / "planted.json"  # someone's own options, linked in place of irm's
    planted.write_text(json.dumps({"gw-x": {"address": "198.18.1.1", "ssh_args": "-o ProxyCommand=evil"}}))
    kept.unlink()
    kept.symlink_to(planted)
    assert snapshot.load("warm", source, "k" * 64) is None
    kept.unlink()
    os.mkfifo(kept)  # never waited on
    assert snapshot.load("warm", source, "k" * 64) is None
    kept.unlink()
    kept.write_text(json.dumps({"gw-x": {}}))
    kept.chmod(0o666)  # others may write it
    assert snapshot.load("warm", source, "k" * 64) is None
    kept.chmod(0o600)
    assert snapshot.load("warm", source, "k" * 64) == {"gw-x": {}}
    cache.chmod(0o777)  # a directory others may write: nothing read from it, nothing written to it
    assert snapshot.load("warm", source, "k" * 64) is None
    snapshot.store("warm", source, "j" * 64, {"x": 1})
    assert not list(cache.glob("warm-*-jjjj*.json"))
    cache.chmod(0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    monkeypatch.setenv("IRM_CACHE_DIR", str(tmp_path / "linked"))
    (tmp_path / "linked").symlink_to(elsewhere)  # the directory itself a link
    snapshot.store("warm", source, "k" * 64, {"x": 1})
    assert not list(elsewhere.iterdir()) and snapshot.load("warm", source, "k" * 64) is None
