#!/usr/bin/env bash
# Fault campaign: SIGKILL irm in every containment stage and in every recovery step (while it applies
# and while it soaks), each followed by a re-run that must converge to an uninterrupted run's end state
# (every host's live irm table and the connectivity matrix). make test runs a subset of the same test.
#     bench/kill_every_stage.sh          (root; about 5 minutes on a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" IRM_REQUIRE_LAB=1 IRM_KILL_EVERY_STAGE=1
exec pytest -q -p no:cacheprovider tests/integration/test_kill.py "$@"
