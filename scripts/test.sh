#!/usr/bin/env bash
# The whole suite, as CI runs it: static checks, unit tests, lab tests (real namespaces, sshd, nftables,
# Ansible over SSH, traffic, the lab worm), and molecule. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export IRM_REQUIRE_LAB=1  # a lab test that cannot run fails; it is never skipped under make test
cleanup() { irm lab down -i inventories/lab >/dev/null 2>&1 || true; irm lab down -i tests/fixtures/mini >/dev/null 2>&1 || true; }
trap cleanup EXIT
start=$(date +%s)

echo "== static checks"
ruff check orchestrator tests
mypy
ansible-lint -q playbooks roles
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
if [ -d molecule ] && ls molecule/*/molecule.yml >/dev/null 2>&1; then
  echo "== molecule"
  molecule test --all
fi
echo "== make test finished in $(( $(date +%s) - start ))s"
