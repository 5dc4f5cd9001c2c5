#!/usr/bin/env bash
# The main job on the built-in lab: a worm outbreak in subsidiary-x, handled the IRM #1 way.
# Build the lab, prove Ansible reaches every host and the baseline traffic flows, prove the response is
# ready (irm prepare) and draw the architecture (irm map), have the crisis cell sign the containment
# policy and start irm watch under it, seed the lab worm (in subsidiary-x, and a
# second foothold in subsidiary-y, the area behind the emulated Cisco IOS router gw-y, and a third in
# subsidiary-z, which irm reaches only through its execution node z-node), let the watcher cut every
# area its policy allows on its own, identify the perimeter from the AV logs and the gateway sensors
# (irm identify) and open the incident it proposes unless the watcher opened one, stop the watcher,
# contain the area and every other area the worm reached (one command, --detected), watch the spread
# stop, remediate with the validated plan (canary first; a technician for the hosts where the worm
# blocks every method), sign the management approval, recover each area
# in the IRM order (one soaked step at a time), check the baseline traffic is back, write the crisis
# report (irm-report/), show where everything stood and what the crisis cell was told, keep a screenshot
# of the crisis cell's live board (irm serve runs from the start: open it to follow) and the response as
# a validated CACAO v2.0 playbook, and tear the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
INV=inventories/lab
LAB_STATE=$(python3 -c 'import sys
from orchestrator.core.inventory.load import load_inventory
print(load_inventory(sys.argv[1]).lab.state_dir)' "$INV")
JOURNAL=$(mktemp -d)/irm-journal.db
export IRM_JOURNAL=$JOURNAL IRM_OPERATOR=${IRM_OPERATOR:-demo-operator}
banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

BOARD=""
irm lab down -i "$INV" >/dev/null 2>&1 || true
trap 'banner "tearing the lab down"; [ -z "$BOARD" ] || kill "$BOARD" 2>/dev/null || true; irm lab down -i "$INV";
      rm -rf "$(dirname "$JOURNAL")"' EXIT

banner "building the lab from $INV"
irm lab up -i "$INV"
irm lab status -i "$INV"

BOARD_PORT=${IRM_BOARD_PORT:-$(python -m tests.browser port)}
banner "the crisis cell's live board: irm serve (read-only; open http://127.0.0.1:$BOARD_PORT/ to follow the response)"
irm serve --port "$BOARD_PORT" -i "$INV" >"$(dirname "$JOURNAL")/irm-serve.log" 2>&1 &
BOARD=$!
for _ in $(seq 100); do grep -q 'irm board at' "$(dirname "$JOURNAL")/irm-serve.log" && break; sleep 0.2; done
cat "$(dirname "$JOURNAL")/irm-serve.log"

banner "preparation: Ansible reaches every managed host over SSH from the SOC"
irm lab reach -i "$INV"

banner "preparation: baseline connectivity matrix (real TCP)"
irm lab matrix -i "$INV"

banner "preparation: irm prepare (management, each boundary's commit-confirmed round trip, sources, crisis cell, mail, irm's own files, asset drift)"
irm prepare --record --checksums "$(dirname "$JOURNAL")/irm-checksums.json" --drift --plan plans/lab-worm.yml -i "$INV"

banner "preparation: the architecture from the inventory (irm map --out irm-map)"
irm map --out irm-map -i "$INV"

banner "preparation: the crisis cell signs the containment policy irm watch executes (two approvers' SSH keys)"
POLICY=$(dirname "$JOURNAL")/containment-policy.yml
cp "$INV/containment-policy.yml" "$POLICY"
irm policy sign "$POLICY" --key "$LAB_STATE/approvers/ciso" -i "$INV"
irm policy sign "$POLICY" --key "$LAB_STATE/approvers/it-director" -i "$INV"
irm policy check "$POLICY" -i "$INV"

banner "automatic containment: irm watch --policy (in the background; its output follows the outbreak)"
WATCH_LOG=$(dirname "$JOURNAL")/irm-watch.log
irm watch --policy "$POLICY" --confirm-timeout 30 -i "$INV" >"$WATCH_LOG" 2>&1 &
WATCHER=$!
# until it watches and its warm path to the edge and the gateways is ready (at most 30 s)
for _ in $(seq 150); do grep -q 'warm path: connections held' "$WATCH_LOG" && break; sleep 0.2; done
cat "$WATCH_LOG"

banner "outbreak: the lab worm starts on x-ws11 (subsidiary-x/office-1), y-ws11 (subsidiary-y, behind gw-y, an emulated Cisco IOS router) and z-ws11 (subsidiary-z, which the SOC reaches only through its execution node z-node)"
irm lab infect x-ws11 -i "$INV"
seed() {  # a second foothold, unless the worm from subsidiary-x got there first
  local out
  if ! out=$(irm lab infect "$1" -i "$INV" 2>&1); then
    case "$out" in
      *"already infected"*) echo "$1: not seeded, the worm got there first ($out)" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  else
    echo "$out"
  fi
}
seed y-ws11
seed z-ws11
irm lab watch --seconds 3 --no-until-all -i "$INV"

banner "automatic containment: what irm watch did on its own (its output so far)"
cuts() {  # the cuts the watcher started, and those that ended (done or failed)
  echo "$(grep -c 'containing ' "$WATCH_LOG" || true) $(grep -cE 'automatic containment (done|of )' "$WATCH_LOG" || true)"
}
for _ in $(seq 60); do  # until every cut it started has ended and none started for 3 s (at most 3 minutes)
  read -r started ended <<<"$(cuts)"
  if [ "$started" -gt 0 ] && [ "$started" = "$ended" ]; then
    sleep 3
    if [ "$(cuts)" = "$started $ended" ]; then break; fi
  else
    sleep 3
  fi
done
cat "$WATCH_LOG"
banner "the crisis cell takes over: irm watch stops (SIGTERM, after the change it is making)"
kill -TERM "$WATCHER"
wait "$WATCHER" || true
tail -n 1 "$WATCH_LOG"

banner "identification: irm identify reads the AV logs and the gateway sensors' Suricata alerts"
irm identify -i "$INV" || true  # exit 1 would only mean a source could not be read: shown above
open_incident=$(irm incident list --json | python3 -c '
import json, sys
print(next((str(i["id"]) for i in json.load(sys.stdin) if i["status"] == "open"), ""))')
if [ -n "$open_incident" ]; then
  banner "identification: irm watch opened incident $open_incident under the policy; the cell works on in it"
else
banner "identification: the crisis cell records the worm with the command irm identify proposed"
mapfile -t opener < <(irm identify --json -i "$INV" | python3 -c '
import json, shlex, sys
first = [c for c in json.load(sys.stdin)["next_commands"] if c.startswith("irm incident open")]
print("\n".join(shlex.split(first[0]) if first else []))')
if [ "${#opener[@]}" -eq 0 ]; then
  echo "irm identify proposed no incident: the worm was not detected" >&2
  exit 1
fi
echo "${opener[*]}"
"${opener[@]}"
fi

banner "containment: irm contain --area subsidiary-x --detected (and every other area whose detections show the worm)"
irm contain --area subsidiary-x --detected --yes --quiet-window 8 --confirm-timeout 30 -i "$INV"

banner "a fault: gw-x reboots and comes back without its saved configuration (irm lab reboot --lose-config)"
irm lab reboot gw-x --lose-config -i "$INV"
banner "gw-y (IOS) reloads too: it boots on its startup-config (irm saves it after each confirmed change)"
irm lab reboot gw-y -i "$INV"
rc=0
irm status --verify -i "$INV" >/tmp/irm-demo-verify.$$ || rc=$?
grep -E '^(verified|DRIFT|NOT VERIFIED|every)' /tmp/irm-demo-verify.$$ || true
rm -f /tmp/irm-demo-verify.$$
if [ "$rc" = 1 ]; then
  banner "irm status --verify exited 1 (drift): re-running irm contain, then verifying again"
  irm contain --area subsidiary-x --yes --quiet-window 4 --confirm-timeout 30 -i "$INV"
  irm status --verify -i "$INV" | grep -E '^(verified|DRIFT|NOT VERIFIED|every)'
fi

remediate() {  # remediate an area; hosts left for manual work get a technician, then irm verifies them
  local area=$1 canary=$2 rc=0
  banner "remediation of $area: plans/lab-worm.yml, canary $canary first, then the rest"
  irm remediate --area "$area" --plan plans/lab-worm.yml --canary "$canary" --yes -i "$INV" || rc=$?
  [ "$rc" = 0 ] && return 0
  [ "$rc" = 5 ] || return "$rc"
  for host in $(irm status --json -i "$INV" | python3 -c '
import json, sys
area = json.load(sys.stdin)["areas"][sys.argv[1]]["remediation"]
print(" ".join(h for h, r in area.items() if r["state"] in ("manual-needed", "failed")))' "$area"); do
    banner "the worm blocks every method on $host: a technician cleans it at the console, irm verifies"
    irm lab fix-by-hand "$host" -i "$INV"
    irm mark-manual "$host" --technician "technician on site" --note "cleaned at the console" -i "$INV"
    manual+=("$host")
  done
}

manual=()
# every area this run contained, with its first host as the remediation canary
mapfile -t contained < <(irm status --json -i "$INV" | python3 -c '
import json, sys
from orchestrator.core.inventory.load import load_inventory
inv = load_inventory(sys.argv[1])
for name, area in json.load(sys.stdin)["areas"].items():
    if area["posture"] == "isolated":
        print(name, inv.area(name).hosts[0])' "$INV")
for entry in "${contained[@]}"; do
  remediate ${entry% *} ${entry#* }
done
contained=("${contained[@]% *}")
banner "contained, remediated: ${contained[*]}"

banner "recovery needs a signed management approval per area (the CISO's SSH key, four-eyes: not the operator)"
for area in "${contained[@]}"; do
  irm approve --area "$area" --key "$LAB_STATE/approvers/ciso" --reason "remediation verified on every host of $area" \
    -i "$INV"
done
sleep 6  # the quiet window: no detection in the area for 5s before recovery starts

for area in "${contained[@]}"; do
  banner "recovery of $area: the five IRM steps in order, each confirmed (--yes) and soaked"
  irm recover --area "$area" --yes --soak 5s --quiet-window 5s -i "$INV"
done

banner "after recovery: the baseline connectivity matrix again"
irm lab matrix -i "$INV"

banner "aftermath: the crisis cell's notes and actions, then the crisis report from the journal"
if [ "${#manual[@]}" -gt 0 ]; then
  irm note "Manual remediation of ${manual[*]} took a technician on site" --operator "crisis lead" --kind wrong
fi
irm note "Recovery of ${contained[*]} went through the five IRM steps after a signed approval" --operator "crisis lead" \
  --kind right
irm action add "Give the antivirus a tamper-protected update channel" --owner "endpoint team" --react RA4301
irm report --out irm-report -i "$INV"
echo "the report: $PWD/irm-report/report.html (also report.md, report.json)"

banner "where everything stands"
irm status -i "$INV"
irm lab infections -i "$INV"

banner "what the crisis cell was told (the lab's mailbox, $LAB_STATE/mailbox)"
python3 - "$LAB_STATE/mailbox" <<'PY'
import email, pathlib, sys
mails = sorted(pathlib.Path(sys.argv[1]).glob("*.eml"))
for path in mails:
    mail = email.message_from_bytes(path.read_bytes())
    subject = " ".join(str(mail["Subject"]).split())
    print(f"{mail['Date']}  to {len(mail.get_all('X-Envelope-To') or [])}: {subject}")
print(f"{len(mails)} message(s)")
PY

banner "the live board as it stands now (headless Chromium), and the response as a CACAO v2.0 playbook"
python -m tests.browser shot --url "http://127.0.0.1:$BOARD_PORT" --out irm-report/board.png
irm export cacao --as-run -i "$INV" --out irm-report/incident.cacao.json
