#!/usr/bin/python
"""Open new TCP connections to many hosts at once (Ansible module shipped with irm)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: irm_tcp_reach
short_description: Prove a management path by opening new TCP connections to many hosts at once
description:
  - Connects to every target concurrently from where the module runs (irm delegates it to the SOC,
    the controller) and fails if any target does not accept a new connection within O(timeout).
  - Used before confirming a commit-confirmed firewall change, so an unconfirmed change is rolled back
    by the dead-man timer when it cut the management path to hosts behind the boundary.
options:
  targets:
    description: >-
      Hosts to reach, each with C(host), C(address), C(port) and optionally C(via), the play host
      whose change the endpoint depends on.
    type: list
    elements: dict
    required: true
  timeout:
    description: Seconds to wait for each connection.
    type: float
    default: 5
author:
  - irm
"""

EXAMPLES = r"""
- name: Reach SSH on every host behind the gateway
  irm.response.irm_tcp_reach:
    targets: [{host: x-ws11, address: 198.18.32.11, port: 22}]
  delegate_to: localhost
"""

RETURN = r"""
unanswered:
  description: Targets that did not accept a connection.
  returned: always
  type: list
  elements: str
unanswered_via:
  description: The C(via) hosts of the unreachable targets.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.irm.response.plugins.module_utils.irm_reach import unanswered


def main():
    module = AnsibleModule(
        argument_spec={"targets": {"type": "list", "elements": "dict", "required": True},
                       "timeout": {"type": "float", "default": 5}},
        supports_check_mode=True,
    )
    failed = unanswered(module.params["targets"], module.params["timeout"])
    texts = [text for _, text in failed]
    via = sorted({t.get("via") or t["host"] for t, _ in failed})
    if failed:
        module.fail_json(msg=f"management path cut: {', '.join(texts)}", unanswered=texts, unanswered_via=via)
    module.exit_json(changed=False, unanswered=[], unanswered_via=[])


if __name__ == "__main__":
    main()
