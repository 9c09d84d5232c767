#!/usr/bin/env bash
# The crash loop: `usher dev` under mixed load (holds, double confirms, releases, tickets)
# is killed with SIGKILL at a random moment, restarted on the same data dir, and every
# invariant is checked after each restart (see tests/crash_loop.rs):
#   every 202 terminal; no seat held or booked twice; every succeeded hold's and booking's
#   event in analytics; no hold charged twice, no charge without its booking.
#
#   scripts/crash-loop.sh [N]     N rounds (default 20) on one data dir
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "crash-loop.sh: N must be a positive whole number, got '$rounds'" >&2
    exit 2
fi
USHER_CRASH_LOOPS="$rounds" exec cargo test --locked --test crash_loop -- --nocapture
