"""The lab lane in two halves that run at once (scripts/test.sh): lane A on the shipped lab in this
machine's network namespace, lane B on a copy of it (its own lab name and state directory, the same
hosts and addresses) run entirely inside a controller namespace of its own, where the copy's SOC uplink,
routes and mailbox live. Namespaces keep the two labs' addresses apart; nothing else is shared.

    python scripts/lab_lanes.py split              the test files of each lane, one line each (A, then B)
    python scripts/lab_lanes.py inventory DIR NAME  write lane B's inventory (lab NAME) in DIR

The split balances the files' usual durations (seconds, a scheduling hint measured on a 2-core machine;
a file not listed counts as 30 s). Files that name the shipped lab itself (its name, its path in an
expected message) or build the mini lab stay in lane A.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "integration"
LAB = ROOT / "inventories" / "lab"
# name the shipped lab (irmlab-*, "inventories/lab" in an expected message) or build the mini lab
LANE_A_ONLY = {"test_lab_lifecycle.py", "test_reach_and_matrix.py", "test_worm.py", "test_containment_safety.py",
               "test_mini_lab.py"}
USUAL = {
    "test_ios_area.py": 280, "test_recovery.py": 200, "test_node_area.py": 130, "test_faults.py": 160,
    "test_report.py": 95, "test_remediation.py": 100, "test_ios_role.py": 70, "test_live_truth.py": 80,
    "test_containment.py": 60, "test_wheel.py": 52, "test_prepare.py": 48, "test_worm.py": 48, "test_kill.py": 45,
    "test_containment_safety.py": 47, "test_deadman.py": 36, "test_multi_area.py": 35, "test_ios_server.py": 34,
    "test_execution_node.py": 34, "test_model_vs_nftables.py": 34, "test_windows_roles.py": 30,
    "test_reach_and_matrix.py": 28, "test_lab_lifecycle.py": 20, "test_irm_nft_paths.py": 20,
}


def split() -> tuple[list[str], list[str]]:
    files = sorted(p.name for p in TESTS.glob("test_*.py"))
    lanes: dict[str, list[str]] = {"A": [], "B": []}
    load = {"A": 0, "B": 0}
    for name in sorted(files, key=lambda n: (n not in LANE_A_ONLY, -USUAL.get(n, 30), n)):
        lane = "A" if name in LANE_A_ONLY else min(load, key=lambda k: (load[k], k))
        lanes[lane].append(name)
        load[lane] += USUAL.get(name, 30)
    return lanes["A"], lanes["B"]


def inventory(target: Path, name: str) -> None:
    """The shipped lab's inventory with its lab name and state directory changed: lane B's lab."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(LAB, target)
    all_vars = target / "group_vars" / "all.yml"
    data = yaml.safe_load(all_vars.read_text())
    if data.get("irm_lab_name") != "irmlab":
        sys.exit(f"{all_vars}: irm_lab_name is not irmlab: the lanes cannot tell the labs apart")
    text = all_vars.read_text().replace("irm_lab_name: irmlab\n", f"irm_lab_name: {name}\n", 1)
    text = text.replace("irm_lab_state_dir: /var/lib/irm-lab/irmlab\n", f"irm_lab_state_dir: /var/lib/irm-lab/{name}\n",
                        1)
    all_vars.write_text(text)
    again = yaml.safe_load(text)
    if again["irm_lab_name"] != name or again["irm_lab_state_dir"] != f"/var/lib/irm-lab/{name}":
        sys.exit(f"{all_vars}: lab name or state directory not replaced")


if __name__ == "__main__":
    if sys.argv[1:2] == ["split"]:
        a, b = split()
        print(" ".join(f"tests/integration/{n}" for n in a))
        print(" ".join(f"tests/integration/{n}" for n in b))
    elif sys.argv[1:2] == ["inventory"] and len(sys.argv) == 4:
        inventory(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)
