"""Where the project's Ansible content lives (playbooks/, the irm.response collection, ansible.cfg)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("IRM_HOME", Path(__file__).resolve().parents[2]))
PLAYBOOKS = PROJECT_ROOT / "playbooks"
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"
COLLECTIONS = PROJECT_ROOT / "collections"  # holds irm.response, the roles and modules the playbooks run


def playbook(name: str) -> Path:
    return PLAYBOOKS / (name if name.endswith(".yml") else f"{name}.yml")
