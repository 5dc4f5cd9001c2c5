#!/usr/bin/python
"""Put an irm policy on a Cisco IOS boundary, or confirm it, in one session (Ansible module shipped with irm)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_ios_acl
short_description: Put irm's access list on a Cisco IOS boundary in one configuration session, or confirm it
description:
  - Runs over the play's C(network_cli) connection (cisco.ios cliconf), each step one command on the same
    session, instead of gathering facts and running three resource modules that each gather again.
  - C(state=applied) reads whether a change is pending (then refused, as irm never arms over someone else's),
    the access lists (C(show access-lists)) and bindings (C(show running-config | include
    ^interface|ip access-group)); refuses, naming nothing on the device, a device holding an irm list
    none of O(expect_policies) would put there (compare-and-swap); plans make before break with the
    collection's renderer; and sends every line in one configuration session. With the task's
    C(ansible_ios_commit_confirm_timeout), cliconf opens it with C(configure terminal revert timer N), so
    an unconfirmed change is rolled back whole by the device.
  - C(state=confirmed) reads the device again while the timer runs, sends C(configure confirm) only when
    it holds exactly the plan, checks that the timer was still pending, and saves (C(write memory)).
  - Lists and bindings irm does not own are never named.
options:
  policy:
    description: The policy (host, label, input, forward, output), as irm's posture model dumps it.
    type: dict
    required: true
  host:
    description: The boundary's inventory name (irm's list names derive from it).
    type: str
    required: true
  interfaces:
    description: The routed interfaces irm binds its list on.
    type: list
    elements: str
    required: true
  expect_policies:
    description: >-
      The policies this journal planned for the device; empty skips the compare-and-swap (a take-over).
    type: list
    elements: dict
    default: []
  state:
    description: C(applied) puts the policy in place; C(confirmed) confirms the pending change.
    type: str
    choices: [applied, confirmed]
    default: applied
author:
  - irm
"""

EXAMPLES = r"""
- name: Put the policy in place under a revert timer
  irm.response.irm_ios_acl:
    policy: "{{ firewall_policy_rules }}"
    host: "{{ inventory_hostname }}"
    interfaces: [GigabitEthernet0/0, GigabitEthernet0/1]
  vars:
    ansible_ios_commit_confirm_timeout: 2
"""

RETURN = r"""
commands:
  description: The configuration lines sent (or, in check mode, that would be sent).
  returned: always
  type: list
  elements: str
name:
  description: irm's access list for this policy (empty when the policy filters nothing).
  returned: always
  type: str
aces:
  description: The list's entries, in order.
  returned: always
  type: list
  elements: str
applied_at:
  description: When the session that changed the device ended (UTC, ISO 8601); empty when nothing was sent.
  returned: always
  type: str
"""

from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.connection import Connection, ConnectionError
from ansible_collections.irm.response.plugins.module_utils import irm_ios_render as ios

NO_PENDING = "No Rollback Confirmed Change pending"


def _read(conn):
    acls = ios.parse_access_lists(conn.get(command="show access-lists"))
    bindings = ios.parse_bindings(conn.get(command="show running-config | include ^interface|ip access-group"))
    return acls, bindings


def main():
    module = AnsibleModule(
        argument_spec={"policy": {"type": "dict", "required": True}, "host": {"type": "str", "required": True},
                       "interfaces": {"type": "list", "elements": "str", "required": True},
                       "expect_policies": {"type": "list", "elements": "dict", "default": []},
                       "state": {"type": "str", "choices": ["applied", "confirmed"], "default": "applied"}},
        supports_check_mode=True,
    )
    p = module.params
    host, interfaces = p["host"], list(p["interfaces"])
    conn = Connection(module._socket_path)
    try:
        acls, bindings = _read(conn)
        planned = ios.plan(host, p["policy"], interfaces=interfaces, live_acls=ios.texts(acls),
                           live_bindings=bindings)
        result = {"changed": False, "commands": [], "name": planned["name"], "aces": planned["aces"],
                  "applied_at": ""}
        if p["state"] == "confirmed":
            if module.check_mode:
                module.exit_json(**result)
            if planned["changes"]:
                module.fail_json(msg=f"{host}: read back before the confirm, the device does not hold irm's plan: "
                                     "not confirmed, the revert timer restores the previous configuration", **result)
            answer = conn.get(command="configure confirm")
            if NO_PENDING in answer:
                module.fail_json(msg=f"{host}: the revert timer already fired: the device restored its previous "
                                     "configuration", **result)
            conn.get(command="write memory")
            module.exit_json(**{**result, "changed": True, "commands": ["configure confirm", "write memory"]})
        if NO_PENDING not in conn.get(command="show archive config rollback timer"):
            module.fail_json(msg=f"{host}: a configuration change is already pending on the device (its revert timer "
                                 "runs): irm arms nothing over it; wait for it to be confirmed or rolled back by "
                                 "whoever made it", **result)
        if p["expect_policies"] and not ios.known(host, p["expect_policies"], interfaces, ios.texts(acls), bindings):
            module.fail_json(msg=f"{host}: compare-and-swap refused: the device holds an irm access list or binding "
                                 "that none of the policies this journal planned for it would put there (another "
                                 "journal's or another SOC machine's): nothing sent; irm contain --take-over "
                                 "replaces it", **result)
        lines = ios.cli_lines(planned, acls, bindings)
        result.update(changed=bool(lines), commands=lines)
        if lines and not module.check_mode:
            conn.edit_config(candidate=lines)
            result["applied_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        module.exit_json(**result)
    except ios.IosPolicyError as exc:
        module.fail_json(msg=f"{host}: {exc}")
    except ConnectionError as exc:
        module.fail_json(msg=f"{host}: {exc}")


if __name__ == "__main__":
    main()
