#!/usr/bin/python
"""Remove a worm from a Linux host: kill its processes, remove its files, stop and disable its services."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_disinfect
short_description: Kill a worm's processes, remove its files, stop and disable its services (Linux)
description:
  - Processes match by exact name or executable path, never by a substring of their command line;
    with O(same_netns_only) only the processes in this host's network namespace are touched (lab hosts
    share one PID space).
  - Files are the plan's absolute paths, resolved under O(root) when it is set (lab hosts share one
    filesystem, each keeps its own files under its state directory).
  - Services are stopped and disabled with systemctl when the host has it.
  - Supports check mode (reports what it would do).
options:
  processes:
    description:
      - Exact process names (C(mssecsvc.exe), C(worm)) or absolute executable paths of the worm's processes.
      - This module's own process and its ancestors (Ansible, the shell, the SSH session) are never matched.
    type: list
    elements: str
    default: []
  files:
    description: Absolute paths of the worm's files.
    type: list
    elements: str
    default: []
  services:
    description: Services the worm installed.
    type: list
    elements: str
    default: []
  root:
    description: Directory the file paths are resolved under (empty for the host's own root).
    type: str
    default: ""
  same_netns_only:
    description: Only kill processes in this host's network namespace.
    type: bool
    default: false
  settle:
    description: Seconds to wait after the removal before checking that nothing came back (0 skips it).
    type: float
    default: 3.0
author:
  - irm
"""

EXAMPLES = r"""
- name: Disinfect
  irm.response.irm_disinfect:
    processes: ["/tmp/.x/worm"]
    files: ["/tmp/.x/worm", "/etc/cron.d/worm"]
    services: [worm-updater]
"""

RETURN = r"""
irm_disinfected:
  description: What was killed, removed and disabled.
  returned: always
  type: dict
"""

import contextlib
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.irm.response.plugins.module_utils.irm_worm import on_host, worm_processes


def main():
    module = AnsibleModule(
        argument_spec={
            "processes": {"type": "list", "elements": "str", "default": []},
            "files": {"type": "list", "elements": "str", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "root": {"type": "str", "default": ""},
            "same_netns_only": {"type": "bool", "default": False},
            "settle": {"type": "float", "default": 3.0},
        },
        supports_check_mode=True,
    )
    p = module.params
    done = {"killed": [], "removed": [], "disabled": []}
    victims = worm_processes(p["processes"], p["same_netns_only"])
    for pid, cmdline in victims:
        done["killed"].append(f"{pid} {cmdline[:120]}")
        if not module.check_mode:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for path in p["files"]:
        real = on_host(p["root"], path)
        if os.path.lexists(real):
            done["removed"].append(real)
            if not module.check_mode:
                try:
                    os.unlink(real)
                except IsADirectoryError:
                    module.fail_json(msg=f"{real} is a directory: name the worm's files", irm_disinfected=done)
                except OSError as exc:
                    module.fail_json(msg=f"cannot remove {real}: {exc.strerror}", irm_disinfected=done)
    systemctl = module.get_bin_path("systemctl")
    for service in p["services"]:
        if systemctl is None:
            module.fail_json(msg=f"cannot disable service {service}: no systemctl on this host",
                             irm_disinfected=done)
        rc, _, _ = module.run_command([systemctl, "is-enabled", service])
        active = module.run_command([systemctl, "is-active", service])[0] == 0
        if rc == 0 or active:
            done["disabled"].append(service)
            if not module.check_mode:
                rc, _, err = module.run_command([systemctl, "disable", "--now", service])
                if rc != 0:
                    module.fail_json(msg=f"cannot disable service {service}: {err.strip()}", irm_disinfected=done)
    if any(done.values()) and not module.check_mode and p["settle"] > 0:
        # A worm with a watchdog comes back: look again after a while before calling the host clean.
        time.sleep(p["settle"])
        back = [f"process {pid} {cmdline[:80]}" for pid, cmdline in worm_processes(p["processes"],
                                                                                   p["same_netns_only"])]
        back += [f"file {path}" for path in p["files"] if os.path.lexists(on_host(p["root"], path))]
        if back:
            module.fail_json(msg=f"the worm came back within {p['settle']:g}s ({'; '.join(back)}): a watchdog "
                                 "the plan does not name?", irm_disinfected=done)
    module.exit_json(changed=any(done.values()), irm_disinfected=done)


if __name__ == "__main__":
    main()
