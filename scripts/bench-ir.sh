#!/usr/bin/env bash
# Counts the instructions the server executes per hold, under valgrind's callgrind:
#   scripts/bench-ir.sh [-n HOLDS] [-c CONNECTIONS] LABEL=BINARY LABEL=BINARY ...
# For each build: a fresh data dir, `usher dev` under callgrind (USHER_LOG=warn, rate limit
# off, as scripts/bench.sh), 200 holds to warm it up, the counters zeroed, then `usher bench
# --scenario holds` (closed loop; the bench's read of each status document after the load
# included), and the counters dumped. One line per build: instructions per hold, and the
# change against the first build.
# Unlike holds/s, the count does not move with the VM's speed: two runs of one build differ
# by about 0.3%. It is a count, not a time: under callgrind the server runs about 50 times
# slower, so each group commit carries a write or two instead of a dozen, and what a
# commit costs weighs more than at full speed; cache misses and waits do not show. Use it
# to compare the work two builds do per hold, and scripts/bench-ab.sh for their speed.
# Each build's dump stays in the work dir for `callgrind_annotate` (printed at the end).
# Env: BENCH_CLIENT (the `usher` that runs `usher bench`; default the first build). Needs
# valgrind (apt-get install valgrind), curl and python3.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
holds=2000
connections=16
usage() {
    echo "usage: $0 [-n HOLDS] [-c CONNECTIONS] LABEL=BINARY ..." >&2
    exit 2
}
while getopts "n:c:" opt; do
    case "$opt" in
        n) holds="$OPTARG" ;;
        c) connections="$OPTARG" ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
for tool in valgrind callgrind_control curl python3; do
    command -v "$tool" >/dev/null || {
        echo "bench-ir: $tool is missing (valgrind: apt-get install valgrind)" >&2
        exit 2
    }
done
require_builds bench-ir "$@"
first="${1#*=}"
client="${BENCH_CLIENT:-$first}"
secret="bench-ir-$(random_hex)"
work="$(mktemp -d "${TMPDIR:-/tmp}/usher-bench-ir.XXXXXX")"
pid=""
cleanup() {
    stop_pids "$pid"
}
trap cleanup EXIT

bench() {
    USHER_JWT_SECRET="$secret" "$client" bench --url "http://127.0.0.1:$1" --scenario holds \
        --requests "$2" --connections "$connections"
}

base=""
for build in "$@"; do
    label="${build%%=*}"
    bin="${build#*=}"
    dir="$work/$label"
    mkdir -p "$dir"
    port="$(free_port)"
    USHER_DATA_DIR="$dir/data" USHER_LOG=warn USHER_RATE_LIMIT=0 USHER_JWT_SECRET="$secret" \
        USHER_HTTP_ADDR="127.0.0.1:$port" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/callgrind.out" "$bin" dev >"$dir/dev.log" 2>&1 &
    pid=$!
    # Start-up under callgrind takes seconds, not milliseconds.
    wait_for "http://127.0.0.1:$port/health/ready" 1200 || {
        echo "bench-ir: $label did not get ready under callgrind:" >&2
        tail -n 20 "$dir/dev.log" >&2
        exit 1
    }
    bench "$port" 200 >"$dir/warm.txt" 2>&1
    callgrind_control -z "$pid" >/dev/null 2>&1
    if ! bench "$port" "$holds" >"$dir/bench.txt" 2>&1; then
        echo "bench-ir: the bench against $label failed:" >&2
        cat "$dir/bench.txt" >&2
        exit 1
    fi
    callgrind_control -d "$pid" >/dev/null 2>&1
    stop_pids "$pid"
    pid=""
    # The dump the -d above wrote; the one at exit is callgrind.out itself.
    dump="$dir/callgrind.out.1"
    total="$(awk '/^summary:/ {print $2; exit}' "$dump")"
    per_hold="$(python3 -c "print(round($total / $holds))")"
    if [[ -z "$base" ]]; then
        base="$per_hold"
        echo "$label: $per_hold instructions a hold ($holds holds, $connections connections)"
    else
        change="$(python3 -c "print(f'{($per_hold / $base - 1) * 100:+.2f}%')")"
        echo "$label: $per_hold instructions a hold ($change against ${1%%=*})"
    fi
    echo "  callgrind_annotate $dump"
done
