#!/usr/bin/env bash
# The throughput issue's own yardstick: wrk over 64 connections, first against the axum
# hello-world, then against `usher dev` with holds, and the ratio of the two.
#   scripts/bench-wrk.sh [-d SECONDS] [-c CONNECTIONS] [BIN_DIR]
# BIN_DIR holds the release `usher` and the examples `hello` and `tokens` (default
# $CARGO_TARGET_DIR/release, else target/release; scripts/bench.sh builds them).
#   1. examples/hello on a free port, `POST /` with `{}` from wrk (scripts/wrk/post.lua);
#   2. a fresh `usher dev` as scripts/bench.sh runs it (embedded, USHER_LOG=warn, rate
#      limit off), a movie and enough shows for 20,000 holds a second, a customer token
#      per hold (examples/tokens), then wrk with scripts/wrk/holds.lua: each request holds
#      one fresh seat for its own customer under a fresh Idempotency-Key, as `usher bench
#      --scenario holds` does. After the load it waits for the command queues to empty and
#      fails if a hold was dead-lettered or answered anything but 202.
# The issue measured its reference with wrk; `usher bench` (own connections since run AI)
# now drives the hello-world within a few percent of it, and this keeps the two honest.
# Needs curl and python3; installs wrk (apt-get) when it is missing. scripts/test.sh runs
# it for 2 s on the debug build, for correctness only.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/wrk/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/wrk/lib.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds=10
connections=64
while getopts "d:c:" opt; do
    case "$opt" in
        d) seconds="$OPTARG" ;;
        c) connections="$OPTARG" ;;
        *)
            echo "usage: $0 [-d SECONDS] [-c CONNECTIONS] [BIN_DIR]" >&2
            exit 2
            ;;
    esac
done
shift $((OPTIND - 1))
bin="${1:-${CARGO_TARGET_DIR:-$here/../target}/release}"
command -v wrk >/dev/null || apt_install wrk
for tool in curl python3 "$bin/usher" "$bin/examples/hello" "$bin/examples/tokens"; do
    command -v "$tool" >/dev/null || {
        echo "bench-wrk: $tool is missing (the binaries: scripts/bench.sh builds them)" >&2
        exit 2
    }
done
work="$(mktemp -d "${TMPDIR:-/tmp}/usher-bench-wrk.XXXXXX")"
pids=()
cleanup() {
    stop_pids "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT
# Requests/sec from wrk's output.
rate_of() {
    awk '/^Requests\/sec:/ {print $2}' "$1"
}

echo "== wrk, ${connections} connections, ${seconds} s: axum hello-world, POST /"
port="$(free_port)"
"$bin/examples/hello" "127.0.0.1:$port" >/dev/null &
pids+=("$!")
wait_for "http://127.0.0.1:$port/"
wrk -t1 -c"$connections" -d"${seconds}s" -s "$here/wrk/post.lua" --latency "http://127.0.0.1:$port/" | tee "$work/hello.txt"
stop_pids "${pids[@]}"
pids=()

echo "== wrk, ${connections} connections, ${seconds} s: usher dev (embedded), POST /v1/holds"
USHER_JWT_SECRET="bench-wrk-$(random_hex)"
export USHER_JWT_SECRET
port="$(free_port)"
url="http://127.0.0.1:$port"
USHER_DATA_DIR="$work/data" USHER_LOG=warn USHER_RATE_LIMIT=0 USHER_HTTP_ADDR="127.0.0.1:$port" \
    "$bin/usher" dev >"$work/dev.log" 2>&1 &
pids+=("$!")
wait_for "$url/health/ready"
admin="$("$bin/usher" token --sub bench-wrk-admin --role admin)"
wrk_plan "$url" "$admin" "$bin/examples/tokens" $((seconds * 20000)) "$work/tokens.txt" "$work/plan.txt"
wrk_holds "$url" "$seconds" "$connections" "$work/plan.txt" "$work/holds.txt"
ended=$(date +%s.%N)
cat "$work/holds.txt"
# Every hold must end: the command queue empty, and no dead letter.
left="$(commands_left "$url" "$admin")"
drained="$(python3 -c "print(f'{$(date +%s.%N) - $ended:.2f}')")"
echo "the command queue was empty ${drained} s after the load; its DLQ holds ${left#* }"
if ! holds_ended "$work/holds.txt" "$left"; then
    echo "bench-wrk: a hold was refused, left waiting or dead-lettered (or the script failed)" >&2
    exit 1
fi
hello_rate="$(rate_of "$work/hello.txt")"
holds_rate="$(rate_of "$work/holds.txt")"
echo "== wrk ratio: ${holds_rate} holds/s against ${hello_rate}/s: $(python3 -c "print(f'{$holds_rate / $hello_rate:.3f}')")x"
