#!/bin/sh
# Dead-man timer for irm's firewall changes (commit-confirmed, like Junos "commit confirmed" or
# iptables-apply). "arm SECONDS FILE" restores FILE with nft -f after SECONDS unless "confirm" runs
# first. The timer runs detached in its own session (inside the host's network namespace in the lab).
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
pidfile="$dir/deadman.pid"
statefile="$dir/deadman.state"

stop_timer() {
  if [ -f "$pidfile" ]; then
    kill -- "-$(cat "$pidfile")" 2>/dev/null || kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    return 0
  fi
  return 1
}

case "${1:-}" in
  arm)
    seconds=$2
    previous=$3
    stop_timer || true
    setsid sh -c "sleep $seconds; nft -f '$previous' && echo \"reverted \$(date -u +%Y-%m-%dT%H:%M:%SZ)\" > '$statefile'; rm -f '$pidfile'" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$pidfile"
    echo "armed $(date -u +%Y-%m-%dT%H:%M:%SZ) $seconds" > "$statefile"
    echo armed
    ;;
  confirm)
    if stop_timer; then
      echo "confirmed $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$statefile"
      echo disarmed
    else
      echo "nothing armed"
    fi
    ;;
  status)
    cat "$statefile" 2>/dev/null || echo none
    ;;
  *)
    echo "usage: $0 arm SECONDS FILE | confirm | status" >&2
    exit 2
    ;;
esac
