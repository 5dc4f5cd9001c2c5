#!/usr/bin/python
"""Apply a whole nftables table atomically, commit-confirmed (Ansible module shipped with irm).

The work is done by module_utils/irm_nft_host.py, which the action plugin also runs on the host without
AnsiballZ (see there); this file is the module's documentation and its plain Ansible entry point."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_nft
short_description: Apply one nftables table atomically, commit-confirmed with a token
description:
  - Reads the live table with C(nft -j list table), reduces it to its canonical form (chains, rules in
    order, networks collapsed, port ranges; handles and comments left out, anything irm never writes
    kept verbatim) and compares that form's digest with the desired O(fingerprint). Nothing is done
    when they match and that ruleset is the confirmed one (idempotent). The table's comment is never
    read; a flushed chain or one rule deleted or inserted is a different live fingerprint.
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
  - O(state=rehearsed) runs the commit-confirmed round trip with no change. It arms a timer that would
    restore the last confirmed ruleset, checks it is alive, stops it as a confirmation does and checks
    that nothing is left armed and the live table did not change. Refused while a timer is armed or
    while the live table is not the confirmed one.
  - With O(media), an apply also writes or removes irm's modprobe rule for usb-storage (and unloads the
    module), after the table and in the same call; O(state=media) does only that.
  - In check mode, validates the ruleset with C(nft -c) and reports the diff.
options:
  state:
    description: V(applied) applies O(ruleset); V(confirmed) confirms O(token); V(read) reads;
      V(rehearsed) runs the no-change commit-confirmed round trip; V(media) changes O(media) only.
    type: str
    choices: [applied, confirmed, read, rehearsed, media]
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
    description:
      - The digest of the policy's canonical form (irm's posture model and the irm_nft_fingerprint filter
        compute the same). With O(policy), derived by the action plugin when not given, and refused when
        given and not the policy's.
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
  expect:
    description:
      - Compare-and-swap. The fingerprints of the tables this apply may replace (what its journal last
        recorded for the host). When the live table is none of them, and the last table confirmed on the
        host is none of them either, the apply is refused and nothing changes (another journal or SOC
        machine changed the host). Empty, no check. Not checked in check mode.
    type: list
    elements: str
    default: []
  state_dir:
    description: Directory for desired, confirmed, revert and timer files (required unless O(state=media)).
    type: path
  media:
    description:
      - Removable storage on a Linux host, C(state) (V(present) writes irm's modprobe rule that blocks
        usb-storage, V(absent) removes it), C(dir) (the rule's directory, default C(/etc/modprobe.d)) and
        C(unload) (unload usb-storage now when loaded, default true). With O(state=applied) it is done
        after the table, in the same call; what it could not do fails the task once the table is
        confirmed (RV(irm_media_error)), never leaving the table unconfirmed for it.
    type: dict
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
    token: run-1f2e3d
    state_dir: /var/lib/irm/firewall
    confirm_timeout: 60

- name: Confirm after a new connection proved the management path
  irm.response.irm_nft:
    state: confirmed
    token: run-1f2e3d
    fingerprint: irm-nft-0123456789abcdef0123456789abcdef
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
  description: The digest of the live table's canonical form (V(absent) when there is no table,
    V(unknown) when nftables could not be read).
  returned: always
  type: str
irm_live_rules:
  description: The live table's canonical form (chains and their rules), to name what differs from a plan.
  returned: state=read
  type: dict
irm_counters:
  description: What the table's counters saw, rule comment to packets (irm counts the drops of the
    propagation vectors' ports, per sub-area at a gateway and per host on area hosts).
  returned: state=read
  type: dict
irm_armed_token:
  description: The token of the timer armed on the host, if one is alive.
  returned: always
  type: str
irm_confirmed:
  description: The planned ruleset is live and confirmed (nothing left for a timer to undo).
  returned: when true
  type: bool
irm_media:
  description: What was done to removable storage (blocked, lifted, unchanged; "usb_storage unloaded").
  returned: with O(media)
  type: str
irm_media_error:
  description: Why removable storage could not be changed (the task fails once the table stands).
  returned: with O(media), when it failed
  type: str
irm_rehearsed:
  description: The no-change round trip armed a timer, stopped it and left nothing armed.
  returned: state=rehearsed, when it succeeded
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.irm.response.plugins.module_utils.irm_nft_host import REQUIRED_IF, SPEC, run


def main():
    module = AnsibleModule(argument_spec=SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    result = run(module.params, module.check_mode)
    if result.get("failed"):
        module.fail_json(**{k: v for k, v in result.items() if k != "failed"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
