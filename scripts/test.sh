#!/usr/bin/env bash
# Runs every test. It starts a moto server (a real AWS API: SQS, SNS, DynamoDB) on a free
# loopback port, installing moto[server] with pip if it is missing, then:
#   1. the whole workspace: unit, port contract (embedded and aws), API, end-to-end and
#      usher-lambda tests on the embedded backend, while the static deploy checks
#      (terraform fmt/validate, checkov, hadolint) run beside it;
#   2. the end-to-end and API tests again with the app on the aws backend
#      (USHER_TEST_BACKEND=aws), while the terraform apply test runs beside them on the
#      same moto with the `usher` binary run 1 built (scripts/deploy-checks.sh).
# USHER_SKIP_DEPLOY_CHECKS=1 leaves the deploy checks out (they need terraform).
# Extra arguments go to both cargo test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
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
        scripts/deploy-checks.sh "$1" >"$logs/$1.log" 2>&1 &
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
    echo "== embedded backend (and the aws port contract suite, and usher-lambda)"
    cargo test --workspace --locked "$@"
    # The apply test uses the `usher` binary run 1 built. A target dir shared with another
    # checkout may hold that checkout'"'"'s `usher` by now: a fresh `--no-run` (nothing to
    # build, ~2 s) links this tree'"'"'s back, and a hard link keeps it from then on.
    cargo test --workspace --locked --no-run >/dev/null 2>&1
    usher_bin="${CARGO_TARGET_DIR:-target}/debug/usher"
    ln -f "$usher_bin" "$logs/usher" 2>/dev/null || cp "$usher_bin" "$logs/usher"
    USHER_BIN="$logs/usher" deploy apply
    echo "== end-to-end tests on the aws backend"
    # --workspace keeps the feature set of run 1, so nothing is rebuilt.
    USHER_TEST_BACKEND=aws cargo test --workspace --locked \
        --test booking_flow --test downstream --test tickets --test api "$@"
    finish_deploy || { echo "deploy checks failed" >&2; exit 1; }
' usher-tests "$@"
