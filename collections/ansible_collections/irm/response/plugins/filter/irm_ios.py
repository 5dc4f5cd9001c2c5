"""Filters for IOS boundaries: plan the resource modules' work from a policy and the gathered facts."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.irm.response.plugins.module_utils import irm_ios_render

DOCUMENTATION = r"""
name: irm_ios_plan
short_description: What cisco.ios' resource modules must do to put an irm policy on an IOS boundary
description:
  - Renders the policy's forward chain as one extended access list named IRM-<HOST>-<8 hex of the
    entries' SHA-1>, and returns the make-before-break steps against the gathered facts (C(acls) for
    ios_acls state replaced, C(bindings) for ios_acl_interfaces state replaced, C(delete) for ios_acls
    state deleted), C(arm) (the first step that changes the device) and C(changes).
  - Lists irm does not own are never named; a device's own list bound C(in) on one of irm's
    interfaces is refused.
options:
  _input:
    description: The policy (host, label, input, forward, output), as irm's posture model dumps it.
    type: dict
    required: true
  host:
    description: The boundary's inventory name.
    type: str
    required: true
  interfaces:
    description: The routed interfaces irm binds its list on.
    type: list
    elements: str
    required: true
  resources:
    description: ansible_network_resources from cisco.ios.ios_facts with acls and acl_interfaces.
    type: dict
    required: true
"""


def irm_ios_plan(policy: Any, host: str, interfaces: list[str],
                 resources: dict[str, Any]) -> dict[str, Any]:
    live_acls, live_bindings = irm_ios_render.from_gathered(resources.get("acls"), resources.get("acl_interfaces"))
    try:
        return irm_ios_render.plan(host, policy, interfaces=list(interfaces),
                                   live_acls=live_acls, live_bindings=live_bindings)
    except irm_ios_render.IosPolicyError as exc:
        raise AnsibleFilterError(f"{host}: {exc}") from None


def irm_ios_known(resources: dict[str, Any], policies: list[Any], host: str, interfaces: list[str]) -> bool:
    """Compare-and-swap over gathered facts (``irm_ios_render.known``): everything of irm's on the device
    comes from one of these policies."""
    live_acls, live_bindings = irm_ios_render.from_gathered(resources.get("acls"), resources.get("acl_interfaces"))
    try:
        return irm_ios_render.known(host, policies, list(interfaces), live_acls, live_bindings)
    except irm_ios_render.IosPolicyError as exc:
        raise AnsibleFilterError(f"{host}: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"irm_ios_plan": irm_ios_plan, "irm_ios_known": irm_ios_known}
