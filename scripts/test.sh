#!/usr/bin/env bash
# The whole suite, as CI runs it: static checks, unit tests, lab tests (real namespaces, sshd, nftables,
# Ansible over SSH, traffic, the lab worm), and the molecule scenarios. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export IRM_REQUIRE_LAB=1  # a lab test that cannot run fails; it is never skipped under make test
mkdir -p .irm
cleanup() {
  irm lab down -i inventories/lab >/dev/null 2>&1 || true
  irm lab down -i tests/fixtures/mini >/dev/null 2>&1 || true
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

# The unprivileged lane first (unit and property tests: seconds to minutes); the lab lane (namespaces,
# sshd, nftables, Ansible over SSH, traffic) and molecule run only when it passed.
if [ "$#" -gt 0 ]; then
  lanes=("custom")
else
  lanes=("unit" "lab")
fi
for lane in "${lanes[@]}"; do
  case "$lane" in
    unit) echo "== pytest: unit and property tests"; args=(tests/unit tests/property) ;;
    lab) echo "== pytest: lab tests"; args=(tests/integration) ;;
    *) echo "== pytest"; args=("$@") ;;
  esac
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
