"""The emulated IOS device's access lists, translated, are accepted by the kernel's nftables: every
kind of entry the command line keeps, bound in both directions, loaded into a throwaway network
namespace (``unshare -n``) and read back."""

from __future__ import annotations

import subprocess

import pytest

from orchestrator.lab import ios_enforce
from orchestrator.lab.ios_cli import Config, Device, Interface

pytestmark = pytest.mark.lab

ENTRIES = [
    "permit tcp host 198.18.0.2 198.18.48.0 0.0.0.255 eq 22", "permit tcp any eq 22 host 198.18.0.2 established",
    "deny tcp any any eq 445 4445", "permit udp 198.18.48.0 0.0.255.0 any range 1000 2000",
    "deny tcp any any neq 80", "deny tcp any gt 1023 any lt 1024 log", "deny icmp any any", "remark why",
    "permit ip any any",
]


def test_every_entry_kind_loads_into_nftables() -> None:
    device = Device(Config(hostname="gw", interfaces={"Gi0/0": Interface("Gi0/0"), "Gi0/1": Interface("Gi0/1")}))
    s = device.session()
    for line in ["enable", "configure terminal", "ip access-list extended IRM-IN", *ENTRIES, "exit",
                 "interface Gi0/1", "ip access-group IRM-IN in", "exit", "interface Gi0/0",
                 "ip access-group IRM-IN out", "end"]:
        assert s.execute(line) == "" or line == "configure terminal", (line, s.execute("show access-lists"))
    text = ios_enforce.ruleset(device.config, {"Gi0/0": "lo", "Gi0/1": "lo"})
    proc = subprocess.run(["unshare", "-n", "sh", "-c", "nft -f - && nft list table inet ios"], input=text,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout
    assert listed.count("return") == 4 and listed.count("drop") == 5  # 4 permits; 4 denies and the implicit one
    assert 'iifname "lo" jump acl_IRM-IN' in listed and 'oifname "lo" jump acl_IRM-IN' in listed
