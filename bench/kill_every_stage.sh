#!/usr/bin/env bash
# Fault campaign: SIGKILL irm in every containment stage and in every recovery step (while it applies
# and while it soaks), each followed by a re-run that must converge to an uninterrupted run's end state
# (every host's live irm table and the connectivity matrix). make test runs a subset of the same test.
#     bench/kill_every_stage.sh [--markdown FILE]   (root; about 6 minutes on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/.."
markdown=""
if [ "${1:-}" = "--markdown" ]; then markdown="$2"; shift 2; fi
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" IRM_REQUIRE_LAB=1 IRM_KILL_EVERY_STAGE=1
junit="$(mktemp --suffix=.xml)"
trap 'rm -f "$junit"' EXIT
status=0
pytest -q -p no:cacheprovider --junitxml="$junit" tests/integration/test_kill.py "$@" || status=$?
if [ -n "$markdown" ]; then
    python bench/markdown.py junit kill_every_stage "$junit" "$markdown" "bench/kill_every_stage.sh"
fi
exit "$status"
