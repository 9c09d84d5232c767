#!/usr/bin/env bash
# Runs every test. It starts a moto server (a real AWS API: SQS, SNS, DynamoDB) on a free
# loopback port, installing moto[server] with pip if it is missing, then:
#   1. the whole workspace: unit, port contract (embedded and aws), API, end-to-end and
#      usher-lambda tests on the embedded backend;
#   then the web page in a real browser (scripts/browser-test.sh, on the `usher` run 1 built);
#   then scripts/fuzz-api.sh (schemathesis, zero failures over 1,000+ cases) against the
#      `usher` binary run 1 built (USHER_SKIP_FUZZ=1 leaves it out);
#   then scripts/bench-wrk.sh for 2 s on run 1's debug build, so that the wrk bench keeps
#      working: every hold answered 202 and terminal, no speed checked
#      (USHER_SKIP_BENCH_WRK=1 leaves it out);
#   2. the end-to-end and API tests again with the app on the aws backend
#      (USHER_TEST_BACKEND=aws).
# Beside them run the deploy checks (scripts/deploy-checks.sh): from the start, the static
# ones (terraform fmt/validate, checkov, hadolint) and the terraform apply of the local
# example on the same moto; once run 1 has built `usher`, the rest of the apply test
# (compare with `usher setup`, `usher dev --no-setup` books a seat).
# USHER_SKIP_DEPLOY_CHECKS=1 leaves the deploy checks out (they need terraform).
# scripts/alert-rules.sh runs first (promtool; USHER_SKIP_ALERT_RULES=1 skips it), then the
# unit tests of the scripts' own Python (scripts/test_*.py).
# Extra arguments go to both cargo test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# tests/bench.rs makes its TLS server's certificate with the openssl command line.
command -v openssl >/dev/null || apt_install openssl
exec scripts/moto.sh -- bash -c '
    set -euo pipefail
    logs="$(mktemp -d "${TMPDIR:-/tmp}/usher-deploy-checks.XXXXXX")"
    pids=()
    cleanup() {
        if [[ ${#pids[@]} -gt 0 ]]; then
            kill "${pids[@]}" 2>/dev/null || true
        fi
        rm -rf "$logs"
    }
    trap cleanup EXIT
    deploy() {
        if [[ "${USHER_SKIP_DEPLOY_CHECKS:-}" == 1 ]]; then
            return
        fi
        # apply waits for $logs/usher, linked below once run 1 has built it.
        USHER_BIN="$logs/usher" USHER_BIN_WAIT=3600 scripts/deploy-checks.sh "$1" >"$logs/$1.log" 2>&1 &
        pids+=($!)
        echo "== deploy checks ($1) started beside the tests; output at the end"
    }
    finish_deploy() {
        local failed=0
        for pid in "${pids[@]}"; do
            wait "$pid" || failed=1
        done
        pids=()
        for log in "$logs"/*.log; do
            [[ -e "$log" ]] && cat "$log"
        done
        return "$failed"
    }
    deploy static
    deploy apply
    scripts/alert-rules.sh
    echo "== scripts/bench-targets.py reads and judges a bench.sh run (python unittest)"
    python3 -m unittest discover -s scripts -p "test_*.py"
    echo "== embedded backend (and the aws port contract suite, and usher-lambda)"
    cargo test --workspace --locked "$@"
    # The apply test uses the `usher` binary run 1 built. A target dir shared with another
    # checkout may hold that checkout'"'"'s `usher` by now: a fresh `--no-run` (nothing to
    # build, ~2 s) links this tree'"'"'s back, and a hard link keeps it from then on.
    cargo test --workspace --locked --no-run >/dev/null 2>&1
    usher_bin="${CARGO_TARGET_DIR:-target}/debug/usher"
    ln -f "$usher_bin" "$logs/usher.new" 2>/dev/null || cp "$usher_bin" "$logs/usher.new"
    mv "$logs/usher.new" "$logs/usher"
    echo "== the web page in a browser (scripts/browser-test.sh; USHER_SKIP_BROWSER_TESTS=1 skips)"
    USHER_BIN="$logs/usher" scripts/browser-test.sh
    echo "== schemathesis over the OpenAPI document of usher dev (scripts/fuzz-api.sh)"
    USHER_BIN="$logs/usher" scripts/fuzz-api.sh
    if [[ "${USHER_SKIP_BENCH_WRK:-}" != 1 ]]; then
        echo "== scripts/bench-wrk.sh for 2 s on the debug build: every hold 202 and terminal (no speed checked)"
        scripts/bench-wrk.sh -d 2 "${CARGO_TARGET_DIR:-target}/debug"
    fi
    echo "== end-to-end tests on the aws backend"
    # --workspace keeps the feature set of run 1, so nothing is rebuilt.
    USHER_TEST_BACKEND=aws cargo test --workspace --locked \
        --test booking_flow --test downstream --test tickets --test api --test faults --test web --test operate --test tracing --test bench "$@"
    finish_deploy || { echo "deploy checks failed" >&2; exit 1; }
' usher-tests "$@"
