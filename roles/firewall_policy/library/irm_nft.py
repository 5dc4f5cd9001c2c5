#!/usr/bin/python
"""Apply a whole nftables table atomically, commit-confirmed (Ansible module shipped with irm)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_nft
short_description: Apply one nftables table atomically, commit-confirmed
description:
  - Compares the live table's fingerprint (carried in the table comment) with the desired one and
    does nothing when they match (idempotent).
  - Otherwise saves the live table as the previous ruleset, arms a dead-man timer that restores it
    after O(confirm_timeout) seconds, and applies the ruleset with one C(nft -f) transaction, which
    changes nothing if the ruleset is rejected (the timer is then stopped).
  - In check mode, validates the ruleset with C(nft -c) and reports the diff.
  - O(state=confirmed) disarms the timer; run it over a new connection to prove the management path.
  - Supports check mode and diff mode (before is the live or last applied ruleset, after the planned).
options:
  state:
    description: V(applied) applies O(ruleset); V(confirmed) disarms the dead-man timer.
    type: str
    choices: [applied, confirmed]
    default: applied
  ruleset:
    description: The whole nftables file for the table (create, delete, rebuild).
    type: str
  fingerprint:
    description: The string the ruleset carries in its table comment.
    type: str
  state_dir:
    description: Directory for desired, previous and timer files.
    type: path
    required: true
  table:
    description: The nftables table (family inet) irm owns.
    type: str
    default: irm
  confirm_timeout:
    description: Seconds before the previous ruleset is restored unless confirmed.
    type: int
    default: 60
  deadman:
    description: Arm the dead-man timer before applying.
    type: bool
    default: true
  absent:
    description:
      - The policy filters nothing; O(ruleset) only deletes the table, which is then in place when
        the table does not exist (a host back to its state before irm).
    type: bool
    default: false
author:
  - irm
"""

EXAMPLES = r"""
- name: Apply the policy
  irm_nft:
    ruleset: "{{ lookup('ansible.builtin.template', 'policy.nft.j2') }}"
    fingerprint: irm-policy-0123
    state_dir: /var/lib/irm/firewall
    confirm_timeout: 60

- name: Confirm over a new connection
  irm_nft:
    state: confirmed
    state_dir: /var/lib/irm/firewall
"""

RETURN = r"""
live_fingerprint_matched:
  description: Whether the live table already carried the desired fingerprint.
  returned: state=applied
  type: bool
deadman:
  description: The timer's state after this call (armed, confirmed, none).
  returned: always
  type: str
irm_applied_at:
  description: When the new table took effect (UTC, ISO 8601), the moment traffic changed.
  returned: when applied
  type: str
"""

import datetime
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _write(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


def _stop_timer(pidfile):
    text = _read(pidfile)
    if not text:
        return False
    try:
        os.killpg(int(text.split()[0]), signal.SIGTERM)
    except (ProcessLookupError, ValueError, PermissionError):
        pass
    os.unlink(pidfile)
    return True


def _arm(state_dir, previous, seconds):
    pidfile = os.path.join(state_dir, "deadman.pid")
    statefile = os.path.join(state_dir, "deadman.state")
    _stop_timer(pidfile)
    script = (f"sleep {int(seconds)}; nft -f '{previous}' && "
              f"echo \"reverted $(date -u +%Y-%m-%dT%H:%M:%SZ)\" > '{statefile}'; rm -f '{pidfile}'")
    proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    _write(pidfile, f"{proc.pid}\n")
    _write(statefile, f"armed {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {int(seconds)}\n")


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["applied", "confirmed"], "default": "applied"},
            "ruleset": {"type": "str"},
            "fingerprint": {"type": "str"},
            "state_dir": {"type": "path", "required": True},
            "table": {"type": "str", "default": "irm"},
            "confirm_timeout": {"type": "int", "default": 60},
            "deadman": {"type": "bool", "default": True},
            "absent": {"type": "bool", "default": False},
        },
        required_if=[("state", "applied", ("ruleset", "fingerprint"))],
        supports_check_mode=True,
    )
    p = module.params
    state_dir = p["state_dir"]
    pidfile = os.path.join(state_dir, "deadman.pid")
    nft = module.get_bin_path("nft", required=True)

    if p["state"] == "confirmed":
        if module.check_mode:
            module.exit_json(changed=os.path.exists(pidfile), deadman="armed" if os.path.exists(pidfile) else "none")
        if _stop_timer(pidfile):
            _write(os.path.join(state_dir, "deadman.state"),
                   f"confirmed {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            module.exit_json(changed=True, deadman="confirmed")
        module.exit_json(changed=False, deadman="none")

    rc, live, _ = module.run_command([nft, "list", "table", "inet", p["table"]])
    live = live if rc == 0 else ""
    desired_path = os.path.join(state_dir, "desired.nft")
    last = _read(desired_path)
    ruleset = p["ruleset"] if p["ruleset"].endswith("\n") else p["ruleset"] + "\n"
    if p["fingerprint"] in live or (p["absent"] and not live.strip()):
        module.exit_json(changed=False, live_fingerprint_matched=True, deadman="none")

    # Before: the ruleset last applied, if the live table still carries its fingerprint; else live.
    before = last if last and _fingerprint_of(last) and _fingerprint_of(last) in live else live
    diff = {"before": before, "after": ruleset, "before_header": f"{p['table']} (live)",
            "after_header": f"{p['table']} (planned)"}
    if module.check_mode:
        # Validation only here: when applying, nft -f is one transaction that changes nothing on error.
        rc, _, err = module.run_command([nft, "-c", "-f", "-"], data=ruleset, binary_data=True)
        if rc != 0:
            module.fail_json(msg=f"nft rejected the rendered ruleset: {err.strip()}", diff=diff)
        module.exit_json(changed=True, live_fingerprint_matched=False, diff=diff, deadman="none")

    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    previous = os.path.join(state_dir, "previous.nft")
    _write(previous, f"table inet {p['table']}\ndelete table inet {p['table']}\n{live}")
    _write(desired_path, ruleset)
    if p["deadman"]:
        _arm(state_dir, previous, p["confirm_timeout"])
    rc, _, err = module.run_command([nft, "-f", desired_path])
    applied_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    if rc != 0:
        _stop_timer(pidfile)
        module.fail_json(msg=f"nft -f failed, nothing changed: {err.strip()}", diff=diff)
    module.exit_json(changed=True, live_fingerprint_matched=False, diff=diff,
                     deadman="armed" if p["deadman"] else "none", irm_applied_at=applied_at)


def _fingerprint_of(text):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('comment "irm-policy-'):
            return line.split('"')[1]
    return None


if __name__ == "__main__":
    main()
