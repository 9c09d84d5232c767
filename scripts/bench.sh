#!/usr/bin/env bash
# Reproduces BENCHMARKS.md on this machine: builds the release binaries, then
#   1. the baseline: an axum hello-world (examples/hello.rs) driven by `usher bench
#      --scenario baseline`, the same client as every other step;
#   2. `usher dev` on the embedded backend (fresh data dir, synchronous commits: a 202 is
#      on disk), driven by `usher bench`: holds (closed loop), contention (10,000 customers
#      for 100 seats), mixed, and holds sustained for 60 s at an open-loop rate;
#   3. the peak RSS of `usher dev`;
#   4. scripts/bench-wrk.sh: the hello-world and holds again, both driven by wrk, as the
#      throughput issue measured them (it installs wrk with apt-get when missing);
#   5. the door alone: holds (closed loop) against `usher ingress` on a fresh data dir with
#      no worker running; `usher worker --pool all` starts once the load has ended and
#      drains what it queued, so the bench checks every hold as in step 2. What the
#      admissions cost without the workers on the same two cores;
#   6. the throughput issue's targets, each read from the steps above: met or not
#      (scripts/bench-targets.py).
# The per-caller rate limit is off for the run (USHER_RATE_LIMIT=0): every customer of the
# bench is its own `sub` anyway, so the limit would not bind; it is off so that it cannot.
# Env: BENCH_REQUESTS (default 100000), BENCH_CONNECTIONS (64), BENCH_RATE (10000),
# BENCH_SECONDS (60), BENCH_SKIP_SUSTAINED=1 to leave the sustained step out.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."
requests="${BENCH_REQUESTS:-100000}"
connections="${BENCH_CONNECTIONS:-64}"
rate="${BENCH_RATE:-10000}"
seconds="${BENCH_SECONDS:-60}"

cargo build --release --locked --bin usher --example hello --example tokens
bin="${CARGO_TARGET_DIR:-target}/release"
dir="$(mktemp -d "${TMPDIR:-/tmp}/usher-bench.XXXXXX")"
pids=()
cleanup() {
    stop_pids "${pids[@]}"
    rm -rf "$dir"
}
trap cleanup EXIT
export USHER_DATA_DIR="$dir/data" USHER_LOG=warn USHER_RATE_LIMIT=0

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
echo "== 1. baseline: axum hello-world, POST /"
port="$(free_port)"
"$bin/examples/hello" "127.0.0.1:$port" >/dev/null &
hello=$!
pids+=("$hello")
wait_for "http://127.0.0.1:$port/"
# The hello-world ignores tokens; the bench still mints them, from a throwaway secret.
USHER_JWT_SECRET="baseline-$(random_hex)" \
    "$bin/usher" bench --scenario baseline --url "http://127.0.0.1:$port/" --requests "$requests" \
    --connections "$connections" | tee "$dir/hello.txt"
stop_pids "$hello"
pids=()

echo "== 2. usher dev (embedded)"
port="$(free_port)"
USHER_HTTP_ADDR="127.0.0.1:$port" "$bin/usher" dev >"$dir/dev.log" 2>&1 &
dev=$!
pids+=("$dev")
wait_for "http://127.0.0.1:$port/health/ready"
url="http://127.0.0.1:$port"
echo "-- holds, closed loop"
"$bin/usher" bench --url "$url" --scenario holds --requests "$requests" --connections "$connections" |
    tee "$dir/holds.txt"
echo "-- contention: 10000 customers, 100 seats"
"$bin/usher" bench --url "$url" --scenario contention --requests 10000 --seats 100 --connections "$connections" |
    tee "$dir/contention.txt"
echo "-- mixed"
"$bin/usher" bench --url "$url" --scenario mixed --requests "$((requests / 5))" --connections "$connections"
if [[ "${BENCH_SKIP_SUSTAINED:-}" != 1 ]]; then
    echo "-- holds sustained: ${rate}/s for ${seconds} s, open loop"
    "$bin/usher" bench --url "$url" --scenario holds --rate "$rate" --requests "$((rate * seconds))" \
        --connections 256 | tee "$dir/sustained.txt"
fi
echo "== 3. peak RSS of usher dev: $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$dev/status")" |
    tee "$dir/rss.txt"
stop_pids "$dev"
pids=()
echo "== 4. wrk: the hello-world and holds, each with a fresh server"
scripts/bench-wrk.sh -c "$connections" "$bin" | tee "$dir/wrk.txt"

echo "== 5. the door alone: usher ingress (embedded, fresh data dir), no worker during the load"
# Only `usher dev` makes its own secret; the ingress, the worker and the bench share this one.
USHER_JWT_SECRET="bench-door-$(random_hex)"
export USHER_JWT_SECRET
port="$(free_port)"
url="http://127.0.0.1:$port"
USHER_DATA_DIR="$dir/door" USHER_HTTP_ADDR="127.0.0.1:$port" "$bin/usher" ingress >"$dir/ingress.log" 2>&1 &
pids+=("$!")
if ! wait_for "$url/health/ready"; then
    tail -n 5 "$dir/ingress.log" >&2
    exit 1
fi
"$bin/usher" bench --url "$url" --scenario holds --requests "$requests" --connections "$connections" \
    >"$dir/door.txt" 2>&1 &
door=$!
# The bench prints its accepted line when the load ends; only then do the workers start.
until grep -q '^accepted' "$dir/door.txt" || ! kill -0 "$door" 2>/dev/null; do
    sleep 0.5
done
USHER_DATA_DIR="$dir/door" USHER_HTTP_ADDR="127.0.0.1:$(free_port)" "$bin/usher" worker --pool all \
    >"$dir/worker.log" 2>&1 &
pids+=("$!")
door_status=0
wait "$door" || door_status=$?
cat "$dir/door.txt"
if [[ "$door_status" -ne 0 ]]; then
    echo "bench: the door-alone step failed (exit $door_status)" >&2
    exit "$door_status"
fi
stop_pids "${pids[@]}"
pids=()

echo "== 6. the targets of the throughput issue, from this run"
python3 scripts/bench-targets.py "$dir" "$rate" "$seconds" "${BENCH_SKIP_SUSTAINED:-0}"
