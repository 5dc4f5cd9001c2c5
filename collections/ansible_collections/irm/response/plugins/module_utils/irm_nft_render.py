"""Render an irm policy (chains input/forward/output of first-match rules) as one nftables file.

The one renderer of irm's nftables rulesets: the irm_nft action plugin calls it on the controller for
every host of a stage, and the lab's property test loads its output into real namespaces. It is plain
Python over the policy alone: no template lookup, which in ansible-core copies every variable of the
host (all extra vars and inventory variables) once per host, a cost that grows with the area.

The policy is data from outside the renderer (irm's posture model, or an operator using the role on its
own), so every value is checked before it is written into nft syntax: networks parse as IPv4 networks
(the rules match ``ip saddr``/``ip daddr``), ports are integers in 0..65535, protocols, actions and
defaults come from a fixed set, and comments lose the characters that could end an nft string or line.
"""

from __future__ import annotations

import ipaddress
from typing import Any

CHAINS = ("input", "forward", "output")
_ACTIONS = ("accept", "drop")
_PROTOCOLS = ("tcp", "udp")
COMMENT_MAX = 120  # bytes: nft caps a comment at 128


class PolicyError(ValueError):
    """The policy cannot be rendered; the message names the chain, rule and field."""


def _text(value: Any) -> str:
    """A value made safe inside an nft comment or string: no quote, no backslash, no control character
    (a line break or a NUL would end the line or the file)."""
    text = str(value).replace('"', "'").replace("\\", "/")
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)


def _comment(value: Any) -> str:
    """A rule's comment within nft's limit, counted in bytes (a character is never cut in half)."""
    return _text(value).encode("utf-8")[:COMMENT_MAX].decode("utf-8", "ignore")


def _kind(value: Any) -> str:
    """The plain type of a value (the controller's tagged strings and containers read as str, dict, ...)."""
    return next((t.__name__ for t in (bool, int, float, str, dict, list) if isinstance(value, t)),
                type(value).__name__)


def _nets(items: Any, where: str) -> str:
    if not isinstance(items, list):
        raise PolicyError(f"{where}: expected a list of networks, got {_kind(items)}")
    nets = []
    for item in items:
        try:
            nets.append(str(ipaddress.IPv4Network(str(item), strict=False)))
        except ValueError:
            raise PolicyError(f"{where}: '{_text(item)}' is not an IPv4 network") from None
    return nets[0] if len(nets) == 1 else "{ " + ", ".join(nets) + " }"


def _ports(items: Any, where: str) -> str:
    if not isinstance(items, list):
        raise PolicyError(f"{where}: expected a list of ports, got {_kind(items)}")
    ports = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 65535:
            raise PolicyError(f"{where}: '{_text(item)}' is not a port (an integer in 0..65535)")
        ports.append(str(item))
    return ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"


def _one_of(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise PolicyError(f"{where}: '{_text(value)}' is not one of {', '.join(allowed)}")
    return str(value)


def _rule(rule: Any, where: str) -> str:
    if not isinstance(rule, dict):
        raise PolicyError(f"{where}: expected a mapping, got {_kind(rule)}")
    unknown = sorted(set(rule) - {"action", "src", "dst", "protocol", "dports", "sports", "established", "tcp_ack",
                                  "comment"})
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(unknown)}")
    parts = []
    if rule.get("src"):
        parts.append(f"ip saddr {_nets(rule['src'], where + '.src')}")
    if rule.get("dst"):
        parts.append(f"ip daddr {_nets(rule['dst'], where + '.dst')}")
    if rule.get("established"):
        parts.append("ct state established,related")
    protocol = rule.get("protocol")
    if protocol is not None:
        protocol = _one_of(protocol, _PROTOCOLS, where + ".protocol")
    dports, sports = rule.get("dports") or [], rule.get("sports") or []
    if (dports or sports) and protocol is None:
        raise PolicyError(f"{where}: ports need a protocol (tcp or udp)")
    if protocol and not (dports or sports):
        parts.append(f"meta l4proto {protocol}")
    if dports:
        parts.append(f"{protocol} dport {_ports(dports, where + '.dports')}")
    if sports:
        parts.append(f"{protocol} sport {_ports(sports, where + '.sports')}")
    if rule.get("tcp_ack"):
        if protocol != "tcp":
            raise PolicyError(f"{where}: tcp_ack needs protocol tcp")
        parts.append("tcp flags & ack == ack")
    action = _one_of(rule.get("action"), _ACTIONS, where + ".action")
    if action == "drop" and dports:  # a propagation vector's drops are counted: the boundary is a sensor
        parts.append("counter")
    parts.append(action)
    parts.append(f'comment "{_comment(rule.get("comment", ""))}"')
    return " ".join(parts)


def is_empty(policy: dict[str, Any]) -> bool:
    """The policy filters nothing (every chain empty and accepting): the host carries no irm table."""
    chains = [policy.get(c) or {} for c in CHAINS]
    return all(not (c.get("rules") or []) and c.get("default", "accept") == "accept" for c in chains)


def render(host: str, policy: Any, *, table: str, fingerprint: str, empty: bool | None = None,
           managed: str = "managed by irm (irm.response.firewall_policy)") -> str:
    """The whole nftables file for ``table``: create it if missing, delete it, and rebuild it, as one
    transaction. An empty policy only deletes the table."""
    if not isinstance(policy, dict):
        raise PolicyError(f"policy for {_text(host)}: expected a mapping, got {_kind(policy)}")
    unknown = sorted(set(policy) - {"host", "label", *CHAINS})
    if unknown:
        raise PolicyError(f"policy for {_text(host)}: unknown field(s) {', '.join(unknown)}")
    if not table.replace("_", "").replace("-", "").isalnum():
        raise PolicyError(f"table '{_text(table)}' is not a plain nftables name")
    lines = [
        "#!/usr/sbin/nft -f",
        f"# {_text(managed)}",
        f"# irm policy for {_text(host)}: {_text(policy.get('label', ''))}",
        "# Applied as one transaction: the irm table is created if missing, deleted, and rebuilt whole.",
        f"table inet {table}",
        f"delete table inet {table}",
    ]
    if is_empty(policy) if empty is None else empty:
        lines.append("# Nothing to filter: no irm table at all.")
        return "\n".join(lines) + "\n"
    lines += [f"table inet {table} {{", f'    comment "{_text(fingerprint)}"']
    for chain in CHAINS:
        spec = policy.get(chain) or {}
        if not isinstance(spec, dict):
            raise PolicyError(f"{chain}: expected a mapping, got {_kind(spec)}")
        default = _one_of(spec.get("default", "accept"), _ACTIONS, f"{chain}.default")
        rules = spec.get("rules") or []
        if not isinstance(rules, list):
            raise PolicyError(f"{chain}.rules: expected a list, got {_kind(rules)}")
        lines += ["", f"    chain {chain} {{", f"        type filter hook {chain} priority filter; policy {default};"]
        lines += [f"        {_rule(rule, f'{chain}.rules[{i}]')}" for i, rule in enumerate(rules)]
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"
