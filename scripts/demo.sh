#!/usr/bin/env bash
# The main job on the built-in lab. Until containment lands, it shows the lab worm spreading through an
# uncontained network: build the lab, prove Ansible reaches every host and the baseline traffic flows,
# seed the worm in subsidiary-x, watch who infects whom, then tear everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
INV=inventories/lab
banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

irm lab down -i "$INV" >/dev/null 2>&1 || true
trap 'banner "tearing the lab down"; irm lab down -i "$INV"' EXIT

banner "building the lab from $INV"
irm lab up -i "$INV"
irm lab status -i "$INV"

banner "Ansible reaches every managed host over SSH from the SOC"
irm lab reach -i "$INV"

banner "baseline connectivity matrix (real TCP)"
irm lab matrix -i "$INV"

banner "seeding the lab worm on x-ws11 (subsidiary-x/office-1), no containment in place"
irm lab infect x-ws11 -i "$INV"
irm lab watch --seconds 40 -i "$INV"

banner "who infected whom"
irm lab infections -i "$INV"
irm lab status -i "$INV"
