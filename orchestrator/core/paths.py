"""Where the project's Ansible content lives (playbooks/, the irm.response collection, ansible.cfg)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# An installed wheel carries the content in the package (orchestrator/content/, see setup.py); a checkout
# (an editable install, the tests) reads it in place, two directories above this file. IRM_HOME overrides.
_PACKAGED = Path(__file__).resolve().parents[1] / "content"
PROJECT_ROOT = Path(os.environ["IRM_HOME"]) if os.environ.get("IRM_HOME") else \
    _PACKAGED if (_PACKAGED / "playbooks").is_dir() else Path(__file__).resolve().parents[2]
PLAYBOOKS = PROJECT_ROOT / "playbooks"
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"
COLLECTIONS = PROJECT_ROOT / "collections"  # holds irm.response, the roles and modules the playbooks run


def playbook(name: str) -> Path:
    return PLAYBOOKS / (name if name.endswith(".yml") else f"{name}.yml")


def own_files() -> list[Path]:
    """irm's own files, what `irm prepare` checksums and an execution node must hold at the same paths: its
    package, the collection, the playbooks, ``ansible.cfg`` and this interpreter's ``irm`` entry point (not
    the inventory, not data)."""
    package = Path(__file__).resolve().parents[1]
    out = [f for root in (package, COLLECTIONS, PLAYBOOKS) for f in sorted(root.rglob("*"))
           if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo")]
    return out + [f for f in (ANSIBLE_CFG, Path(sys.prefix) / "bin" / "irm") if f.is_file()]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def module_util(name: str) -> ModuleType:
    """One of the irm.response collection's module_utils (plain Python), loaded from its file: the same
    code the modules run, used by irm itself (the IOS renderer, the management reach)."""
    path = COLLECTIONS / "ansible_collections" / "irm" / "response" / "plugins" / "module_utils" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
