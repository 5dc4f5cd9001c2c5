"""Filters for Windows hosts: the Windows Firewall rules a policy puts on a host, and how the live rule
group differs from them."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.irm.response.plugins.module_utils import irm_win_rules

DOCUMENTATION = r"""
name: irm_windows_rules
short_description: The Windows Firewall rules of an irm host policy
description:
  - One dict of C(community.windows.win_firewall_rule) arguments per rule of the policy's input and output
    chains (name, direction, action, protocol, localport, remoteport, localip, remoteip), in order.
options:
  _input:
    description: The policy (host, label, input, forward, output), as irm's posture model dumps it.
    type: dict
    required: true
"""


def irm_windows_rules(policy: Any) -> list[dict[str, str]]:
    try:
        return list(irm_win_rules.render(policy))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"the policy cannot be rendered as Windows Firewall rules: {exc}") from None


def irm_windows_differences(live: Any, policy: Any) -> list[str]:
    """How irm's live rule group (as read_windows returns it) differs from the policy; empty: it is the plan."""
    try:
        return list(irm_win_rules.differences(policy, live))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"the live rules cannot be compared with the policy: {exc}") from None


def irm_windows_known(live: Any, policies: list[Any]) -> bool:
    """Compare-and-swap: every rule of irm's live group is, field for field, a rule of one of these
    policies (so a group from an apply cut short, or with rules deleted, is repaired); a rule of any
    other policy, another journal's or another SOC machine's or one edited by hand, is not known."""
    try:
        return bool(irm_win_rules.known(live, policies))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"the live rules cannot be compared with the policies: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"irm_windows_rules": irm_windows_rules, "irm_windows_differences": irm_windows_differences,
                "irm_windows_known": irm_windows_known}
