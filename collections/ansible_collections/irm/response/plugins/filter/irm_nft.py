"""Filters for nftables boundaries: the fingerprint a policy's table has once it is live."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.irm.response.plugins.module_utils import irm_nft_host

DOCUMENTATION = r"""
name: irm_nft_fingerprint
short_description: The fingerprint of the irm table a policy puts on a host
description:
  - Reduces the policy to the canonical form the host computes from C(nft -j list table) (chains, rules in
    order, networks collapsed, ports as ranges; comments and handles left out) and returns its digest,
    or V(absent) for a policy that filters nothing. Equal fingerprints mean equal enforcement.
options:
  _input:
    description: The policy (host, label, input, forward, output), as irm's posture model dumps it.
    type: dict
    required: true
"""


def irm_nft_fingerprint(policy: Any) -> str:
    try:
        return str(irm_nft_host.policy_fingerprint(policy))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"the policy cannot be reduced to its canonical form: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"irm_nft_fingerprint": irm_nft_fingerprint}
