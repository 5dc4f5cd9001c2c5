#!/usr/bin/env bash
# The main job on the built-in lab: a worm outbreak in subsidiary-x, contained the IRM #1 way.
# Build the lab, prove Ansible reaches every host and the baseline traffic flows, record the incident,
# seed the lab worm, contain the area (and any other area the worm reached before the cut), watch the
# spread stop, show where everything stands, and tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
INV=inventories/lab
JOURNAL=$(mktemp -d)/irm-journal.db
export IRM_JOURNAL=$JOURNAL IRM_OPERATOR=${IRM_OPERATOR:-demo-operator}
banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

irm lab down -i "$INV" >/dev/null 2>&1 || true
trap 'banner "tearing the lab down"; irm lab down -i "$INV"; rm -rf "$(dirname "$JOURNAL")"' EXIT

banner "building the lab from $INV"
irm lab up -i "$INV"
irm lab status -i "$INV"

banner "preparation: Ansible reaches every managed host over SSH from the SOC"
irm lab reach -i "$INV"

banner "preparation: baseline connectivity matrix (real TCP)"
irm lab matrix -i "$INV"

banner "outbreak: the lab worm starts on x-ws11 (subsidiary-x/office-1)"
irm lab infect x-ws11 -i "$INV"
irm lab watch --seconds 3 --no-until-all -i "$INV"

banner "identification: the crisis cell records the worm"
irm incident open --worm Lab.Worm.IRM-A --vector tcp/4445 --signature Lab.Worm.IRM-A --reference CVE-2017-0144

banner "containment: irm contain --area subsidiary-x"
irm contain --area subsidiary-x --yes --quiet-window 8 --confirm-timeout 30 -i "$INV"

if irm lab infections --json -i "$INV" | grep -q '"area": "hq"'; then
  banner "the worm reached hq before the cut: contain hq too"
  irm contain --area hq --yes --quiet-window 8 --confirm-timeout 30 -i "$INV"
fi

banner "where everything stands"
irm status -i "$INV"
irm lab infections -i "$INV"
