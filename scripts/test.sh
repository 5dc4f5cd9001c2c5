#!/usr/bin/env bash
# The whole suite, as CI runs it: static checks, unit tests, lab tests (real namespaces, sshd, nftables,
# Ansible over SSH, traffic, the lab worm), and the molecule scenarios. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export IRM_REQUIRE_LAB=1  # a lab test that cannot run fails; it is never skipped under make test
mkdir -p .irm
LANE_B_NS=irmctl-b           # lane B's controller namespace (scripts/lab_lanes.py)
LANE_B_DIR=/var/lib/irm-lab/lane-b
cleanup() {
  irm lab down -i inventories/lab >/dev/null 2>&1 || true
  irm lab down -i tests/fixtures/mini >/dev/null 2>&1 || true
  if ip netns list | grep -qw "$LANE_B_NS"; then
    ip netns exec "$LANE_B_NS" "$PWD/.venv/bin/irm" lab down -i "$LANE_B_DIR/inventory" >/dev/null 2>&1 || true
    for pid in $(ip netns pids "$LANE_B_NS"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$LANE_B_NS" || true
  fi
  rm -rf "$LANE_B_DIR"
}
trap cleanup EXIT
start=$(date +%s)
passed=0
failed=0

echo "== static checks"
for check in "ruff check ." "mypy" "ansible-lint -q playbooks collections"; do
  if $check; then passed=$((passed + 1)); else echo "FAILED: $check"; failed=$((failed + 1)); fi
done

count() {  # passed and failed tests of one junit file
  python - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1)
else:
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests, fail, err, skip = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(tests - fail - err - skip, fail + err + (1 if tests == 0 else 0))
PY
}

# The lab lane in two halves at once: lane A on the shipped lab here, lane B on a copy of it inside a
# controller namespace of its own (scripts/lab_lanes.py). Prints lane B's output after lane A's.
lab_lanes() {
  local a b status_b=0
  a=$(python scripts/lab_lanes.py split | sed -n 1p)
  b=$(python scripts/lab_lanes.py split | sed -n 2p)
  cleanup
  # sshd's privilege separation directory made here, so that neither lab's teardown removes it under
  # the other's sshd (a lab removes it only when its own 'up' created it)
  mkdir -p /run/sshd
  rm -rf "$LANE_B_DIR" && mkdir -p "$LANE_B_DIR"
  python scripts/lab_lanes.py inventory "$LANE_B_DIR/inventory" irmlane
  ip netns add "$LANE_B_NS" && ip -n "$LANE_B_NS" link set lo up
  # shellcheck disable=SC2086
  ip netns exec "$LANE_B_NS" env IRM_TEST_LAB_INVENTORY="$LANE_B_DIR/inventory" \
      IRM_INVENTORY="$LANE_B_DIR/inventory" ANSIBLE_SSH_CONTROL_PATH_DIR="$LANE_B_DIR/cp" \
      ANSIBLE_PERSISTENT_CONTROL_PATH_DIR="$LANE_B_DIR/pc" \
      pytest -q -p no:cacheprovider -m "not campaign" --junitxml=.irm/junit-lab-b.xml $b \
      >.irm/lab-b.log 2>&1 &
  local pid_b=$!
  echo "== lane A: $a"
  # shellcheck disable=SC2086
  pytest -q -p no:cacheprovider -m "not campaign" --junitxml=.irm/junit-lab-a.xml $a
  wait "$pid_b" || status_b=$?
  echo "== lane B (namespace $LANE_B_NS, lab irmlane; exit $status_b): $b"
  cat .irm/lab-b.log
}

# The unprivileged lane first (unit and property tests: seconds to minutes); the lab lane (namespaces,
# sshd, nftables, Ansible over SSH, traffic) and molecule run only when it passed.
if [ "$#" -gt 0 ]; then
  lanes=("custom")
else
  lanes=("unit" "lab")
fi
for lane in "${lanes[@]}"; do
  case "$lane" in
    unit) echo "== pytest: unit and property tests"; args=(-n auto tests/unit tests/property) ;;
    # the long fault and scale cases (marked campaign) run in bench/lab_campaign.sh; a sample of each here
    lab) echo "== pytest: lab tests, two lanes at once"; args=() ;;
    *) echo "== pytest"; args=("$@") ;;
  esac
  if [ "$lane" = "lab" ]; then
    lab_lanes
    for half in a b; do
      read -r p f < <(count ".irm/junit-lab-$half.xml")
      passed=$((passed + p)); failed=$((failed + f))
    done
    continue
  fi
  pytest -q -p no:cacheprovider --junitxml=".irm/junit-$lane.xml" "${args[@]}"
  read -r p f < <(count ".irm/junit-$lane.xml")
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$lane" = "unit" ] && [ "$f" -gt 0 ]; then
    echo "the unprivileged lane failed: the lab lane and molecule do not run"
    echo "== make test finished in $(( $(date +%s) - start ))s"
    echo "summary: ${passed} passed, ${failed} failed"
    exit 1
  fi
done

echo "== molecule"
for scenario in molecule/*/molecule.yml; do
  name=$(basename "$(dirname "$scenario")")
  log=".irm/molecule-$name.log"
  if molecule test -s "$name" >"$log" 2>&1; then
    echo "molecule $name: passed"; passed=$((passed + 1))
  else
    echo "molecule $name: FAILED (last lines of $log below)"; tail -n 60 "$log"; failed=$((failed + 1))
  fi
done

echo "== make test finished in $(( $(date +%s) - start ))s"
echo "summary: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
