#!/usr/bin/env bash
# The lab's long fault and scale cases (tests marked `campaign`): a second journal against the first, a
# node cut off mid-stage, gateway reboots, tampered chains, two operators at once, a dead-man timer that
# fires before the confirm, the IOS device's own revert and compare-and-swap, SIGKILL in a boundary stage
# and in recovery steps, an area past the argument limit. make test runs a sample of each kind.
#     bench/lab_campaign.sh [--markdown FILE] [PYTEST ARGS]   (root; about 15 minutes on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/.."
markdown=""
if [ "${1:-}" = "--markdown" ]; then markdown="$2"; shift 2; fi
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" IRM_REQUIRE_LAB=1
junit="$(mktemp --suffix=.xml)"
trap 'rm -f "$junit"' EXIT
status=0
pytest -q -p no:cacheprovider -m campaign --junitxml="$junit" tests/integration "$@" || status=$?
if [ -n "$markdown" ]; then
    python bench/markdown.py junit lab_campaign "$junit" "$markdown" "bench/lab_campaign.sh"
fi
exit "$status"
