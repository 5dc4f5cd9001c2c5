#!/usr/bin/env bash
# Line coverage of the phase packages from the unit and property tests alone, run as an unprivileged
# user (nobody): proof that the phase logic is tested without root, without the lab. Needs root only
# to set up the view: a private mount namespace where the interpreter's directory under /root is
# readable, then every test runs as uid 65534. Prints coverage's report.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d /tmp/irm-unpriv.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/view" "$work/home" "$work/data"
chmod 777 "$work/home" "$work/data"
python=$(readlink -f .venv/bin/python)
inner=$(cat <<INNER
set -e
case "$python" in /root/*)
  top=\$(echo "$python" | cut -d/ -f3)
  mkdir -p "$work/view/\$top"
  mount --bind "/root/\$top" "$work/view/\$top"
  mount --rbind "$work/view" /root ;;
esac
cd "$root"  # the commands default to inventories/lab, relative to the project
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$work/home" PYTHONPATH="$root" \
  COVERAGE_FILE="$work/data/.coverage" PYTHONDONTWRITEBYTECODE=1 \
  "$root/.venv/bin/python" -m coverage run --source="$root/orchestrator" -m pytest -q -p no:cacheprovider \
  --rootdir="$root" -c "$root/pyproject.toml" "$root/tests/unit" "$root/tests/property" -rfs | tail -n 15
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$work/home" COVERAGE_FILE="$work/data/.coverage" \
  "$root/.venv/bin/python" -m coverage report \
  --include="$root/orchestrator/containment/*,$root/orchestrator/remediation/*,$root/orchestrator/recovery/*,$root/orchestrator/aftermath/*,$root/orchestrator/preparation/*,$root/orchestrator/identification/*,$root/orchestrator/watch/*,$root/orchestrator/core/applier.py,$root/orchestrator/core/stream.py"
INNER
)
unshare -m sh -c "$inner"
rm -rf "$work"
