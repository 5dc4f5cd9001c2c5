#!/usr/bin/python
"""Apply a whole nftables table atomically, commit-confirmed (Ansible module shipped with irm)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_nft
short_description: Apply one nftables table atomically, commit-confirmed with a token
description:
  - Compares the live table's fingerprint (carried in the table comment) with the desired one and
    does nothing when they match and that ruleset is the confirmed one (idempotent).
  - Otherwise arms a dead-man timer for O(token) that restores the last B(confirmed) ruleset (kept on
    the host; none means no irm table) after O(confirm_timeout) seconds, then applies the ruleset with
    one C(nft -f) transaction, which changes nothing if the ruleset is rejected (the timer is then
    stopped). The timer is its own session, detached from the connection that armed it; its pidfile
    (pid, start time, token) is written before it sleeps, and a process is only ever signalled when
    its start time matches the pidfile (a stale pidfile after a reboot never kills another process).
  - Refuses to arm while another run's timer is armed and alive on the host, unless that run's token
    is in O(takeover_tokens) (a run known to be dead).
  - O(state=confirmed) succeeds only if the timer armed for O(token) is still alive and the live
    table carries O(fingerprint); it then stops the timer and records the ruleset as confirmed (the
    file a boot loads). Otherwise it fails and returns what is live.
  - O(state=read) returns the live table's fingerprint and the timer's state, changing nothing.
  - In check mode, validates the ruleset with C(nft -c) and reports the diff.
options:
  state:
    description: V(applied) applies O(ruleset); V(confirmed) confirms O(token); V(read) reads.
    type: str
    choices: [applied, confirmed, read]
    default: applied
  ruleset:
    description: The whole nftables file for the table (create, delete, rebuild).
    type: str
  policy:
    description:
      - Instead of O(ruleset), irm's abstract policy (C(label) and chains C(input), C(forward), C(output),
        each C(rules) and a C(default)); the action plugin renders it on the controller into O(ruleset)
        for the table O(table), carrying O(fingerprint). Every network, port, protocol and action is
        checked first; a value that is not one fails the task before anything reaches the host.
    type: dict
  fingerprint:
    description: The string the ruleset carries in its table comment.
    type: str
  token:
    description: The apply this timer belongs to; confirming needs the same token.
    type: str
    default: manual
  takeover_tokens:
    description: Tokens of runs known to be dead, whose armed timers may be replaced.
    type: list
    elements: str
    default: []
  state_dir:
    description: Directory for desired, confirmed, revert and timer files.
    type: path
    required: true
  table:
    description: The nftables table (family inet) irm owns.
    type: str
    default: irm
  confirm_timeout:
    description: Seconds before the last confirmed ruleset is restored unless confirmed.
    type: int
    default: 60
  deadman:
    description: Arm the dead-man timer before applying (without it the apply counts as confirmed).
    type: bool
    default: true
  reach:
    description:
      - Management endpoints (C(host), C(address), C(port)) that must accept a new TCP connection from
        the controller right after the apply; the action plugin then confirms within the same task.
        Omitted, the apply stays armed until a separate O(state=confirmed) call.
    type: list
    elements: dict
  reach_timeout:
    description: Seconds to wait for each O(reach) connection.
    type: float
    default: 5
  boot_unit:
    description:
      - On confirm, make sure a systemd unit loads the confirmed ruleset at boot (when systemd runs).
    type: bool
    default: false
  nft_path:
    description: The nft binary the boot unit runs.
    type: path
    default: /usr/sbin/nft
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
  irm.response.irm_nft:
    policy:
      label: "isolated: subsidiary-x"
      input:
        default: drop
        rules:
          - {action: accept, established: true, comment: replies}
          - {action: accept, src: [198.18.0.10/32], protocol: tcp, dports: [22], comment: SOC management}
    fingerprint: irm-policy-0123
    token: run-1f2e3d
    state_dir: /var/lib/irm/firewall
    confirm_timeout: 60

- name: Confirm after a new connection proved the management path
  irm.response.irm_nft:
    state: confirmed
    token: run-1f2e3d
    fingerprint: irm-policy-0123
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
irm_live_fingerprint:
  description: The fingerprint the live table carries (V(absent) when there is no table).
  returned: always
  type: str
irm_armed_token:
  description: The token of the timer armed on the host, if one is alive.
  returned: always
  type: str
irm_confirmed:
  description: The planned ruleset is live and confirmed (nothing left for a timer to undo).
  returned: when true
  type: bool
"""

import datetime
import os
import signal
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
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def _timer(pidfile):
    """(pid, token) of the armed timer if that very process is alive, else None."""
    text = _read(pidfile)
    if not text:
        return None
    parts = text.split()
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    pid, started, token = int(parts[0]), parts[1], parts[2]
    return (pid, token) if _start_time(pid) == started else None


def _stop_timer(module, pidfile):
    """Stops the armed timer (only the process the pidfile names, checked by its start time).
    Returns the token it was armed for, or None when nothing was armed. A kill that fails fails."""
    armed = _timer(pidfile)
    if armed is not None:
        pid = armed[0]
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except OSError as exc:
            module.fail_json(msg=f"cannot stop the dead-man timer (pid {pid}): {exc}")
        for _ in range(50):
            if _start_time(pid) is None:
                break
            time.sleep(0.02)
        else:
            module.fail_json(msg=f"the dead-man timer (pid {pid}) is still alive after SIGTERM")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    return armed[1] if armed else None


def _arm(state_dir, revert, seconds, token):
    """Start the timer in its own session; it writes its pidfile (pid, start time, token) before it sleeps."""
    pidfile = os.path.join(state_dir, "deadman.pid")
    statefile = os.path.join(state_dir, "deadman.state")
    script = (f"sleep {int(seconds)}; nft -f '{revert}' && "
              f"echo \"reverted $(date -u +%Y-%m-%dT%H:%M:%SZ) {token}\" > '{statefile}'; rm -f '{pidfile}'")
    pid = os.fork()
    if pid == 0:  # the timer: a new session, no descriptor of the connection that armed it
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            me = os.getpid()
            _write(pidfile, f"{me} {_start_time(me)} {token}\n")
            os.execvp("sh", ["sh", "-c", script])
        finally:
            os._exit(127)
    os.waitpid(pid, os.WNOHANG)
    for _ in range(250):
        if _timer(pidfile) is not None:
            break
        time.sleep(0.02)
    else:
        return False
    _write(statefile, f"armed {_now()} {int(seconds)} {token}\n")
    return True


def _live(module, nft, table):
    rc, out, _ = module.run_command([nft, "list", "table", "inet", table])
    return out if rc == 0 else ""


def _fingerprint_of(text):
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith('comment "irm-policy-'):
            return line.split('"')[1]
    return None


def _live_fingerprint(live):
    return _fingerprint_of(live) or ("absent" if not live.strip() else "unknown")


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["applied", "confirmed", "read"], "default": "applied"},
            "ruleset": {"type": "str"},
            "fingerprint": {"type": "str"},
            "token": {"type": "str", "default": "manual"},
            "takeover_tokens": {"type": "list", "elements": "str", "default": []},
            "state_dir": {"type": "path", "required": True},
            "table": {"type": "str", "default": "irm"},
            "confirm_timeout": {"type": "int", "default": 60},
            "deadman": {"type": "bool", "default": True},
            "absent": {"type": "bool", "default": False},
            "reach": {"type": "list", "elements": "dict"},  # handled by the action plugin
            "policy": {"type": "dict"},  # rendered into ruleset by the action plugin
            "reach_timeout": {"type": "float", "default": 5},
            "boot_unit": {"type": "bool", "default": False},
            "nft_path": {"type": "path", "default": "/usr/sbin/nft"},
        },
        required_if=[("state", "applied", ("ruleset", "fingerprint")), ("state", "confirmed", ("fingerprint",))],
        supports_check_mode=True,
    )
    p = module.params
    state_dir = p["state_dir"]
    pidfile = os.path.join(state_dir, "deadman.pid")
    confirmed_path = os.path.join(state_dir, "confirmed.nft")
    desired_path = os.path.join(state_dir, "desired.nft")
    nft = module.get_bin_path("nft", required=True)
    live = _live(module, nft, p["table"])
    armed = _timer(pidfile)
    facts = {"irm_live_fingerprint": _live_fingerprint(live), "irm_armed_token": armed[1] if armed else ""}

    if p["state"] == "read":
        module.exit_json(changed=False, deadman="armed" if armed else "none", **facts)
    if p["state"] == "confirmed":
        _confirm(module, p, pidfile, armed, live, facts, desired_path, confirmed_path)

    ruleset = p["ruleset"] if p["ruleset"].endswith("\n") else p["ruleset"] + "\n"
    in_place = p["fingerprint"] in live or (p["absent"] and not live.strip())
    last_confirmed = _read(confirmed_path)
    confirmed_in_place = (_fingerprint_of(last_confirmed) == p["fingerprint"]) if not p["absent"] \
        else last_confirmed is None or not _fingerprint_of(last_confirmed)
    if armed and armed[1] != p["token"] and armed[1] not in p["takeover_tokens"]:
        module.fail_json(msg=f"another run's dead-man timer (token {armed[1]}, pid {armed[0]}) is armed here: "
                             "wait for it to be confirmed or to expire", **facts)
    if in_place and confirmed_in_place and not armed:
        module.exit_json(changed=False, live_fingerprint_matched=True, deadman="none", irm_confirmed=True, **facts)

    before = live
    diff = {"before": before, "after": ruleset, "before_header": f"{p['table']} (live)",
            "after_header": f"{p['table']} (planned)"}
    if module.check_mode:
        # Validation only here: when applying, nft -f is one transaction that changes nothing on error.
        rc, _, err = module.run_command([nft, "-c", "-f", "-"], data=ruleset, binary_data=True)
        if rc != 0:
            module.fail_json(msg=f"nft rejected the rendered ruleset: {err.strip()}", diff=diff, **facts)
        module.exit_json(changed=not in_place, live_fingerprint_matched=in_place, diff=diff, deadman="none",
                         **facts)

    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    if armed:  # a timer of this run (a retry) or of a dead run: replaced by this apply's own
        _stop_timer(module, pidfile)
    revert = os.path.join(state_dir, "revert.nft")
    # the confirmed file is itself a whole-table ruleset (create, delete, rebuild)
    _write(revert, last_confirmed or f"table inet {p['table']}\ndelete table inet {p['table']}\n")
    _write(desired_path, ruleset)
    if p["deadman"] and not _arm(state_dir, revert, p["confirm_timeout"], p["token"]):
        module.fail_json(msg="the dead-man timer did not start: nothing applied", **facts)
    rc, _, err = module.run_command([nft, "-f", desired_path])
    applied_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
    if rc != 0:
        _stop_timer(module, pidfile)
        module.fail_json(msg=f"nft -f failed, nothing changed: {err.strip()}", diff=diff, **facts)
    if not p["deadman"]:
        _record_confirmed(desired_path, confirmed_path, p["absent"])
    facts["irm_live_fingerprint"] = _live_fingerprint(_live(module, nft, p["table"]))
    module.exit_json(changed=not in_place, live_fingerprint_matched=in_place, diff=diff,
                     deadman="armed" if p["deadman"] else "none", irm_applied_at=applied_at,
                     **facts)


def _record_confirmed(desired_path, confirmed_path, absent):
    """The confirmed ruleset is what the timer restores and what a boot loads (none: no irm table)."""
    if absent:
        if os.path.exists(confirmed_path):
            os.unlink(confirmed_path)
        return
    _write(confirmed_path, _read(desired_path) or "")


UNIT = "/etc/systemd/system/irm-firewall.service"


def _boot_unit(module, nft_path, confirmed_path):
    """A reboot loads the last confirmed table before the network comes up, never an unconfirmed one."""
    if not os.path.isdir("/run/systemd/system"):
        return
    text = ("[Unit]\nDescription=irm: load the last confirmed irm nftables table\nDefaultDependencies=no\n"
            "Before=network-pre.target\nWants=network-pre.target\n"
            f"ConditionPathExists={confirmed_path}\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={nft_path} -f {confirmed_path}\n\n[Install]\nWantedBy=sysinit.target\n")
    if _read(UNIT) != text:
        _write(UNIT, text)
        os.chmod(UNIT, 0o644)
        module.run_command(["systemctl", "daemon-reload"])
    rc, _, err = module.run_command(["systemctl", "enable", "irm-firewall.service"])
    if rc != 0:
        module.fail_json(msg=f"confirmed, but the boot unit could not be enabled: {err.strip()}")


def _confirm(module, p, pidfile, armed, live, facts, desired_path, confirmed_path):
    live_fp = facts["irm_live_fingerprint"]
    wanted = "absent" if p["absent"] else p["fingerprint"]
    if module.check_mode:
        module.exit_json(changed=bool(armed), deadman="armed" if armed else "none", **facts)
    if armed is None and live_fp == wanted and _fingerprint_of(_read(confirmed_path)) == (
            None if p["absent"] else wanted):
        module.exit_json(changed=False, deadman="none", irm_confirmed=True, **facts)  # already confirmed
    if armed is None or armed[1] != p["token"]:
        state = (_read(os.path.join(p["state_dir"], "deadman.state")) or "no timer state").strip()
        module.fail_json(msg=f"no dead-man timer armed for {p['token']} any more ({state}); live table: "
                             f"{live_fp}", **facts)
    if live_fp != wanted:
        module.fail_json(msg=f"the live table is {live_fp}, not the planned {wanted}: not confirmed "
                             "(the dead-man timer will restore the last confirmed ruleset)", **facts)
    _stop_timer(module, pidfile)
    _record_confirmed(desired_path, confirmed_path, p["absent"])
    _write(os.path.join(p["state_dir"], "deadman.state"), f"confirmed {_now()} {p['token']}\n")
    if p["boot_unit"]:
        _boot_unit(module, p["nft_path"], confirmed_path)
    facts["irm_armed_token"] = ""
    module.exit_json(changed=True, deadman="confirmed", irm_confirmed=True, **facts)


if __name__ == "__main__":
    main()
