#!/usr/bin/python
"""Verify on a Linux host that the worm is gone, the fix is in place and the declared services answer."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_verify
short_description: Verify a remediated Linux host (infection gone, fix in place, services answering)
description:
  - Infection gone - no process has a name or executable path of the plan, none of the plan's files exists, and the
    antivirus scan command exits 0.
  - Fix in place - every package check command exits 0 and the vulnerability check command, if any,
    exits 0 (the host no longer accepts the worm's payload).
  - Services answering - a new TCP connection from this host to each health check endpoint succeeds.
  - Changes nothing; fails, with the reasons in C(irm_verification), when any check fails.
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
  root:
    description: Directory the file paths are resolved under (empty for the host's own root).
    type: str
    default: ""
  same_netns_only:
    description: Only look at processes in this host's network namespace.
    type: bool
    default: false
  av_scan_command:
    description: Antivirus scan command; exit 0 means clean. Empty skips the scan.
    type: str
    default: ""
  package_checks:
    description: Commands that exit 0 when a fixed package version is installed.
    type: list
    elements: str
    default: []
  vuln_check_command:
    description: Command that exits 0 when the host no longer accepts the worm's payload. Empty skips it.
    type: str
    default: ""
  health:
    description: Endpoints (name, address, port) that must accept a TCP connection from this host.
    type: list
    elements: dict
    default: []
author:
  - irm
"""

EXAMPLES = r"""
- name: Verify
  irm.response.irm_verify:
    processes: ["/tmp/.x/worm"]
    files: ["/tmp/.x/worm"]
    av_scan_command: clamscan --infected --recursive --no-summary /
    package_checks: ["sh -c 'dpkg --compare-versions \"$(dpkg-query -W -f=${Version} openssl)\" ge 3.0.15'"]
    health: [{name: erp, address: 10.0.0.5, port: 8069}]
"""

RETURN = r"""
irm_verification:
  description: Per check group, the reasons it failed (empty lists when verified).
  returned: always
  type: dict
"""

import os
import shlex
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.irm.response.plugins.module_utils.irm_worm import on_host, worm_processes


def _run(module, command):
    rc, out, err = module.run_command(shlex.split(command))
    text = (out.strip() or err.strip()).splitlines()
    return rc, (text[-1][:200] if text else f"exit {rc}")


def main():
    module = AnsibleModule(
        argument_spec={
            "processes": {"type": "list", "elements": "str", "default": []},
            "files": {"type": "list", "elements": "str", "default": []},
            "root": {"type": "str", "default": ""},
            "same_netns_only": {"type": "bool", "default": False},
            "av_scan_command": {"type": "str", "default": ""},
            "package_checks": {"type": "list", "elements": "str", "default": []},
            "vuln_check_command": {"type": "str", "default": ""},
            "health": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = {"infected": [], "unfixed": [], "unhealthy": []}
    result["infected"].extend(f"process {pid} matches the plan ({cmdline[:80]})"
                              for pid, cmdline in worm_processes(p["processes"], p["same_netns_only"]))
    for path in p["files"]:
        if os.path.lexists(on_host(p["root"], path)):
            result["infected"].append(f"file {path} present")
    if p["av_scan_command"]:
        rc, last = _run(module, p["av_scan_command"])
        if rc != 0:
            result["infected"].append(f"antivirus scan: {last}")
    for command in p["package_checks"]:
        rc, last = _run(module, command)
        if rc != 0:
            result["unfixed"].append(f"package: {last}")
    if p["vuln_check_command"]:
        rc, last = _run(module, p["vuln_check_command"])
        if rc != 0:
            result["unfixed"].append(f"still vulnerable: {last}")
    for check in p["health"]:
        try:
            with socket.create_connection((check["address"], int(check["port"])), timeout=3):
                pass
        except OSError as exc:
            result["unhealthy"].append(f"{check['name']} {check['address']}:{check['port']} "
                                       f"({exc.__class__.__name__})")
    reasons = result["infected"] + result["unfixed"] + result["unhealthy"]
    if reasons:
        module.fail_json(msg="; ".join(reasons), irm_verification=result)
    module.exit_json(changed=False, irm_verification=result)


if __name__ == "__main__":
    main()
