"""Write a lab inventory with one area of N hosts (the benchmark's subject), following the schema.

    python bench/make_inventory.py N DIR

Area `bench-x` behind gateway `gw-b`: four sub-areas and a mobile segment sharing N hosts; a small
`hq` area with an ERP; core, edge, an internet host. Addresses in 198.19.128.0/17, lab name irmbench.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import yaml


def lab_vars(name: str) -> dict[str, object]:
    """The variables every benchmark lab shares: its name and state directory, the bench address space
    (198.19.128.0/17), the lab worm, and SSH to the lab's namespaces."""
    return {
        "irm_lab_name": name, "irm_lab_state_dir": f"/var/lib/irm-lab/{name}",
        "irm_lab_prefixes": ["198.19.128.0/17"],
        "irm_host_state_dir": "{{ irm_lab_state_dir }}/hosts/{{ inventory_hostname }}",
        "irm_av_log": "{{ irm_host_state_dir }}/av.log",
        "irm_lab_worm": {"signature": "Bench.Worm", "ports": [4445], "rate": 1, "lifetime": 60},
        "removable_media_modprobe_dir": "{{ irm_host_state_dir }}", "removable_media_unload": False,
        "firewall_policy_boot_unit": False,
        "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": "{{ irm_lab_state_dir }}/ssh/id_ed25519",
        "ansible_ssh_common_args": "-o UserKnownHostsFile={{ irm_lab_state_dir }}/ssh/known_hosts "
                                   "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
    }


def frame(tag: str, gateways: Mapping[str, object]) -> dict[str, object]:
    """The groups every multi-area benchmark lab shares: SOC, core, edge, the given gateways, and one
    internet host, in 198.19.128.0/17; host names end in ``-TAG``."""
    return {
        "soc": {"hosts": {f"soc-{tag}": {"ansible_connection": "local", "irm_uplink": "198.19.128.2/30"}}},
        "core": {"hosts": {f"core-{tag}": {"ansible_host": "198.19.128.1"}}},
        "edge": {"hosts": {f"edge-{tag}": {"ansible_host": "198.19.128.6", "irm_uplink": "198.19.128.6/30"}}},
        "gateways": {"hosts": gateways},
        "internet": {"vars": {"irm_prefix": "198.19.129.0/24"},
                     "hosts": {f"inet-{tag}": {"ansible_host": "198.19.129.10",
                                               "irm_lab_services": [{"name": "web", "port": 80}]}}},
    }


def inventory(n: int) -> dict[str, object]:
    mobile = max(1, n // 10)
    per_sub = [(n - mobile) // 4 + (1 if i < (n - mobile) % 4 else 0) for i in range(4)]
    children: dict[str, object] = {}
    for i, count in enumerate(per_sub):
        children[f"subarea_bench_x__floor_{i + 1}"] = {
            "vars": {"irm_prefix": f"198.19.{160 + i}.0/24"},
            "hosts": {f"b{i + 1}-{k:03d}": {"ansible_host": f"198.19.{160 + i}.{10 + k}"} for k in range(count)},
        }
    children["mobile_bench_x__vpn"] = {
        "vars": {"irm_prefix": "198.19.170.0/24"},
        "hosts": {f"bl-{k:03d}": {"ansible_host": f"198.19.170.{10 + k}"} for k in range(mobile)},
    }
    return {"all": {
        "vars": lab_vars("irmbench"),
        "children": {
            "soc": {"hosts": {"soc-b": {"ansible_connection": "local", "irm_uplink": "198.19.128.2/30"}}},
            "core": {"hosts": {"core-b": {"ansible_host": "198.19.128.1"}}},
            "edge": {"hosts": {"edge-b": {"ansible_host": "198.19.128.6", "irm_uplink": "198.19.128.6/30"}}},
            "gateways": {"hosts": {
                "gw-b": {"ansible_host": "198.19.128.10", "irm_uplink": "198.19.128.10/30"},
                "gw-hq": {"ansible_host": "198.19.128.14", "irm_uplink": "198.19.128.14/30"}}},
            "internet": {"vars": {"irm_prefix": "198.19.129.0/24"},
                         "hosts": {"inet-b": {"ansible_host": "198.19.129.10",
                                              "irm_lab_services": [{"name": "web", "port": 80}]}}},
            "area_hq": {"vars": {"irm_gateway": "gw-hq"}, "children": {"subarea_hq__servers": {
                "vars": {"irm_prefix": "198.19.150.0/24"},
                "hosts": {"erp-b": {"ansible_host": "198.19.150.10",
                                    "irm_lab_services": [{"name": "erp", "port": 8069}]}}}}},
            "area_bench_x": {"vars": {"irm_gateway": "gw-b"}, "children": children},
        },
    }}


def main() -> None:
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    (out / "hosts.yml").write_text(yaml.safe_dump(inventory(n), sort_keys=False))


if __name__ == "__main__":
    main()
