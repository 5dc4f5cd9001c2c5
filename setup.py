"""The wheel carries irm's Ansible content as package data (orchestrator/content/): the playbooks, the
irm.response collection and the default Ansible settings, copied from the repository's top-level
directories, where they are edited. An editable install (the checkout) reads them in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CONTENT = {  # source in the repository -> place under orchestrator/content/
    "playbooks": "playbooks",
    "collections/ansible_collections/irm/response": "collections/ansible_collections/irm/response",
    "ansible.cfg": "ansible.cfg",
}


class BuildWithContent(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "orchestrator" / "content"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.retry")
        for source, target in CONTENT.items():
            src, out = ROOT / source, dest / target
            if src.is_dir():
                shutil.copytree(src, out, ignore=ignore, dirs_exist_ok=True)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)


setup(cmdclass={"build_py": BuildWithContent})
