"""The typed boundary between irm and its plays: what a boundary stage's play receives (``StageVars``,
the extra vars; ``playbooks/vars/roles.yml`` maps them onto the ``firewall_policy`` role's options) and
what each of its hosts returns (``StageFacts``, from ``irm.response.irm_nft`` or the role's IOS and
Windows tasks). The phase tables name them for every stage; a test checks them against the role's
``argument_specs.yml``, the variable mapping and the module's documented returns, so a variable renamed
on one side fails the suite, not a crisis."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StageVars(BaseModel):
    """The extra vars of one boundary stage's play (containment stages, recovery steps, their rollbacks)."""

    model_config = ConfigDict(extra="forbid")

    irm_targets: str  # the play's hosts, comma-joined
    irm_targets_linux: str  # per OS ("all:!all": none)
    irm_targets_windows: str
    irm_policies: dict[str, dict[str, Any]]  # host -> the planned policy (posture.Policy, dumped)
    irm_fingerprints: dict[str, str]  # host -> the planned policy's fingerprint
    irm_token: str  # the run's: the timers it arms carry it
    irm_takeover_tokens: list[str]  # runs known dead: their armed timers may be taken over
    irm_expect: dict[str, list[str]]  # compare-and-swap: the tables each host may hold
    irm_expect_policies: dict[str, list[dict[str, Any]]]  # the same for IOS and Windows: the policies
    firewall_policy_confirm_timeout: int  # the dead-man timer, seconds
    irm_reach: dict[str, list[dict[str, Any]]]  # host -> the management endpoints proven after its change
    irm_media_targets_linux: str | None = None  # recovery's mobile step: removable storage lifted too
    irm_media_targets_windows: str | None = None


class StageFacts(BaseModel):
    """What one host of a boundary stage returns (every field optional: a read-only play returns less)."""

    model_config = ConfigDict(extra="allow")

    irm_applied_at: str | None = None  # when its new table took effect (the host's clock)
    irm_live_fingerprint: str | None = None  # the fingerprint of the table it enforces, read back
    irm_confirmed: bool | None = None  # its change confirmed (the dead-man timer stopped)
    irm_live_rules: Any = None  # nftables: the live table, canonical, where it differs from the plan
    irm_counters: dict[str, int] | None = None  # nftables read: rule comment -> packets its counter saw
    irm_live_windows_rules: Any = None  # Windows: irm's rule group as the firewall lists it
