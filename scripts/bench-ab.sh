#!/usr/bin/env bash
# Compares builds of Usher by interleaved rounds, as the A/B tables of docs/benchmarks-log.md do:
#   scripts/bench-ab.sh [-r ROUNDS] [-n REQUESTS | -w SECONDS] LABEL=BINARY LABEL=BINARY ...
# Each round runs every build once, in the order given: a fresh data dir, `usher dev` on a
# free port (USHER_LOG=warn, rate limit off, as scripts/bench.sh), then `usher bench
# --scenario holds` closed loop over 64 connections. One line per run: holds/s, accept
# p50/p99, the server's CPU (user + system, from /proc) and its write jobs and commits
# (`usher_store_*` on /metrics) per hold. Then each build's means, and each later build
# against the first, paired by round: the mean ratio of holds/s and of CPU a hold, with its
# 95% confidence interval (Student's t over the rounds' log ratios), and whether the
# interval holds zero ("within the noise").
# With -w SECONDS the load is wrk instead of `usher bench`, for SECONDS a run, as
# scripts/bench-wrk.sh drives it (scripts/wrk/lib.sh): the issue's yardstick, with a client
# that leaves the server the cores. The CPU then counts until the command queue is empty
# again, as `usher bench` waits for every hold to end; a run fails if a hold was refused,
# left or dead-lettered. The tokens come from BENCH_TOKENS (default the release build's
# examples/tokens), minted once for all runs.
# Interleaving matters: this VM's speed moves by up to 2x between windows of minutes.
# Copy a binary aside (cp target/release/usher /tmp/usher-a) before building the next.
# Env: BENCH_CLIENT (the `usher` that runs `usher bench`; default the first build),
# BENCH_CONNECTIONS (64), BENCH_TOKENS. Needs curl and python3 (and wrk for -w).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/wrk/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/wrk/lib.sh"
rounds=6
requests=40000
wrk_seconds=""
usage() {
    echo "usage: $0 [-r ROUNDS] [-n REQUESTS | -w SECONDS] LABEL=BINARY ..." >&2
    exit 2
}
while getopts "r:n:w:" opt; do
    case "$opt" in
        r) rounds="$OPTARG" ;;
        n) requests="$OPTARG" ;;
        w) wrk_seconds="$OPTARG" ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
require_builds bench-ab "$@"
first="${1#*=}"
client="${BENCH_CLIENT:-$first}"
connections="${BENCH_CONNECTIONS:-64}"
tokens_bin="${BENCH_TOKENS:-${CARGO_TARGET_DIR:-$(dirname "${BASH_SOURCE[0]}")/../target}/release/examples/tokens}"
if [[ -n "$wrk_seconds" ]]; then
    command -v wrk >/dev/null || apt_install wrk
    [[ -x "$tokens_bin" ]] || {
        echo "bench-ab: $tokens_bin is missing (cargo build --release --example tokens, or set BENCH_TOKENS)" >&2
        exit 2
    }
fi
secret="bench-ab-$(random_hex)"
ticks="$(getconf CLK_TCK)"
work="$(mktemp -d "${TMPDIR:-/tmp}/usher-bench-ab.XXXXXX")"
pid=""
cleanup() {
    stop_pids "$pid"
    rm -rf "$work"
}
trap cleanup EXIT
cpu_ticks() {
    # utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the command's name.
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
metric() {
    awk -v name="$1" '$1 == name {printf "%d", $2}' "$work/metrics"
}

for round in $(seq 1 "$rounds"); do
    for build in "$@"; do
        label="${build%%=*}"
        bin="${build#*=}"
        dir="$work/run"
        rm -rf "$dir"
        mkdir -p "$dir"
        port="$(free_port)"
        USHER_DATA_DIR="$dir/data" USHER_LOG=warn USHER_RATE_LIMIT=0 USHER_JWT_SECRET="$secret" \
            USHER_HTTP_ADDR="127.0.0.1:$port" "$bin" dev >"$dir/dev.log" 2>&1 &
        pid=$!
        wait_for "http://127.0.0.1:$port/health/ready" || {
            cat "$dir/dev.log" >&2
            exit 1
        }
        if [[ -n "$wrk_seconds" ]]; then
            url="http://127.0.0.1:$port"
            admin="$(USHER_JWT_SECRET="$secret" "$client" token --sub bench-ab-admin --role admin)"
            USHER_JWT_SECRET="$secret" wrk_plan "$url" "$admin" "$tokens_bin" $((wrk_seconds * 20000)) \
                "$work/tokens.txt" "$dir/plan.txt"
            before="$(cpu_ticks "$pid")"
            wrk_holds "$url" "$wrk_seconds" "$connections" "$dir/plan.txt" "$dir/bench.txt"
            left="$(commands_left "$url" "$admin")"
            after="$(cpu_ticks "$pid")"
            if ! holds_ended "$dir/bench.txt" "$left"; then
                echo "bench-ab: round $round of $label: a hold was refused, left or dead-lettered:" >&2
                cat "$dir/bench.txt" >&2
                exit 1
            fi
        else
            before="$(cpu_ticks "$pid")"
            if ! USHER_JWT_SECRET="$secret" "$client" bench --url "http://127.0.0.1:$port" --scenario holds \
                --requests "$requests" --connections "$connections" >"$dir/bench.txt" 2>&1; then
                echo "bench-ab: round $round of $label failed:" >&2
                cat "$dir/bench.txt" >&2
                exit 1
            fi
            after="$(cpu_ticks "$pid")"
        fi
        curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics"
        stop_pids "$pid"
        pid=""
        python3 - "$dir/bench.txt" "$round" "$label" "$requests" "$ticks" "$before" "$after" \
            "$(metric usher_store_writes_total)" "$(metric usher_store_commits_total)" >>"$work/results" <<'PY'
import re, sys
out, round_, label, requests, ticks, before, after, writes, commits = sys.argv[1:]
text = open(out).read()
if text.startswith("Running"):  # wrk, with scripts/wrk/holds.lua's summary line
    rate = str(round(float(re.search(r"Requests/sec:\s+(\S+)", text).group(1))))
    n, p50, p99 = re.search(r"holds: (\d+) answered 202.*p50 (\S+ ms), p99 (\S+ ms)", text).groups()
    n = int(n)
else:
    n = int(requests)
    line = next(l for l in text.splitlines() if l.startswith("accepted"))
    rate, p50, p99 = re.search(r": (\d+)/s; accept latency p50 (\S+ ms), p99 (\S+ ms)", line).groups()
cpu = (int(after) - int(before)) / int(ticks) * 1e6 / n
print(f"{round_}\t{label}\t{rate}\t{p50}\t{p99}\t{cpu:.1f}\t{int(writes) / n:.2f}\t{int(commits) / n:.3f}")
PY
        tail -n 1 "$work/results" | awk -F'\t' \
            '{printf "round %s  %-12s %6s holds/s  p50 %s  p99 %s  cpu %s us/hold  %s writes/hold  %s commits/hold\n", $1, $2, $3, $4, $5, $6, $7, $8}'
    done
done

if [[ -n "$wrk_seconds" ]]; then
    load="wrk for $wrk_seconds s"
else
    load="$requests holds"
fi
echo "== means over $rounds rounds of $load"
python3 - "$work/results" "$@" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
for build in sys.argv[2:]:
    label = build.split("=", 1)[0]
    mine = [r for r in rows if r[1] == label]
    mean = lambda i: sum(float(r[i]) for r in mine) / len(mine)
    print(f"{label:12s} {mean(2):8.0f} holds/s  cpu {mean(5):6.1f} us/hold  {mean(6):.2f} writes/hold")
PY

if [[ $# -ge 2 && "$rounds" -ge 2 ]]; then
    echo "== each build against ${1%%=*}, paired by round (95% confidence interval of the mean ratio)"
    python3 - "$work/results" "$@" <<'PY'
import math, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
labels = [b.split("=", 1)[0] for b in sys.argv[2:]]
by = {(r[0], r[1]): r for r in rows}
rounds = sorted({r[0] for r in rows}, key=int)
# Student's t, two-sided 95%, by degrees of freedom (1.96 past the table).
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131]

def interval(ratios):
    logs = [math.log(x) for x in ratios]
    n = len(logs)
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    t = T95[n - 2] if n - 2 < len(T95) else 1.96
    half = t * sd / math.sqrt(n)
    return [100 * (math.exp(v) - 1) for v in (mean, mean - half, mean + half)]

def describe(name, ratios):
    mid, low, high = interval(ratios)
    verdict = "within the noise" if low <= 0 <= high else ("higher" if low > 0 else "lower")
    return f"{name} {mid:+.1f}% ({low:+.1f}% to {high:+.1f}%, {verdict})"

base = labels[0]
for label in labels[1:]:
    pairs = [(by[(r, base)], by[(r, label)]) for r in rounds if (r, base) in by and (r, label) in by]
    holds = [float(b[2]) / float(a[2]) for a, b in pairs]
    cpu = [float(b[5]) / float(a[5]) for a, b in pairs]
    print(f"{label:12s} {describe('holds/s', holds)};  {describe('cpu a hold', cpu)}")
PY
fi
