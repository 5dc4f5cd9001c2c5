"""What a planned policy becomes on its device, rendered on the controller by the same collection code
the plays run: the nftables file of a Linux host or boundary, the extended access list of an IOS
boundary, the firewall rules of a Windows host. ``irm contain --dry-run --offline`` prints these
without reaching any host."""

from __future__ import annotations

from orchestrator.core.inventory import Inventory
from orchestrator.core.paths import module_util
from orchestrator.core.posture import Policy

NFT_TABLE = "irm"  # firewall_policy_table's default


def rendered(inv: Inventory, host: str, policy: Policy) -> str:
    """The device's form of ``policy`` for ``host``, as text."""
    known = inv.hosts[host]
    data = policy.model_dump(mode="json")
    if known.boundary_kind == "cisco_ios":
        ios = module_util("irm_ios_render")
        aces = list(ios.render(host, data))
        if not aces:
            return "! nothing to filter: no irm access list, none bound\n"
        name = ios.acl_name(host, aces)
        return "\n".join([f"ip access-list extended {name}", *(f" {ace}" for ace in aces)]) + "\n"
    if known.os == "windows":
        rules = module_util("irm_win_rules").render(data)
        if not rules:
            return "# nothing to filter: no rule in irm's group\n"
        return "".join(f"{r['name']}: {r['action']} {r['direction']} {r['protocol']} local "
                       f"{r['localip'] or 'any'}:{r['localport'] or 'any'} remote {r['remoteip'] or 'any'}:"
                       f"{r['remoteport'] or 'any'}\n" for r in rules)
    return str(module_util("irm_nft_render").render(host, data, table=NFT_TABLE, fingerprint=policy.fingerprint))
