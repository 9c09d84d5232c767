#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis over the OpenAPI document `usher dev` serves:
# every check, every phase (examples, coverage, fuzzing, stateful), at least
# FUZZ_MAX_EXAMPLES cases per operation (default 40: over 1,000 cases in all), with an
# admin token minted by `usher token` (given through the document's `bearer` scheme in
# fuzz/schemathesis.toml, so the missing-credential checks are real). Any failure fails the script.
#
# - schemathesis is installed with pip into a venv cached at ~/.cache/usher/schemathesis.
# - `usher` is the already built binary: USHER_BIN, else $CARGO_TARGET_DIR/debug/usher
#   (target/debug/usher). It runs on a free port with a temp data dir, the rate limit off
#   (USHER_RATE_LIMIT=0: the fuzzer sends hundreds of commands a second under one token)
#   and the hold cap high (one token holds many seats).
# - scripts/fuzz/hooks.py gives each generated command a fresh Idempotency-Key:
#   one key reused with another body is 422 by design, not a finding.
#
#   USHER_SKIP_FUZZ=1 scripts/fuzz-api.sh   skips it, saying so
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

if [[ "${USHER_SKIP_FUZZ:-}" == 1 ]]; then
    echo "fuzz-api.sh: skipped (USHER_SKIP_FUZZ=1)"
    exit 0
fi

venv="${HOME}/.cache/usher/schemathesis"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    echo "fuzz-api.sh: installing schemathesis into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet schemathesis
fi

usher="${USHER_BIN:-${CARGO_TARGET_DIR:-target}/debug/usher}"
[[ -x "$usher" ]] || { echo "fuzz-api.sh: no usher binary at $usher (cargo build first, or set USHER_BIN)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/usher-fuzz.XXXXXX")"
pid=""
cleanup() {
    stop_pids "$pid"
    rm -rf "$work"
}
trap cleanup EXIT

port="$(free_port)"
export USHER_DATA_DIR="$work/data" USHER_HTTP_ADDR="127.0.0.1:$port" USHER_LOG=warn \
    USHER_RATE_LIMIT=0 USHER_MAX_HELD_SEATS=1000000
unset USHER_BACKEND USHER_JWT_SECRET USHER_JWT_PREVIOUS_SECRET USHER_JWT_ISSUER USHER_JWT_AUDIENCE
"$usher" dev >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    grep -q "usher is listening" "$work/dev.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/dev.log" >&2; exit 1; }
    sleep 0.2
done
USHER_FUZZ_TOKEN="$("$usher" token --sub fuzz-admin --role admin --ttl 1h)"
export USHER_FUZZ_TOKEN

echo "fuzz-api.sh: schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}') against http://127.0.0.1:$port/openapi.json"
SCHEMATHESIS_HOOKS="scripts.fuzz.hooks" PYTHONPATH="$PWD" "$venv/bin/schemathesis" \
    --config-file scripts/fuzz/schemathesis.toml run \
    "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "${FUZZ_MAX_EXAMPLES:-40}" \
    --seed "${FUZZ_SEED:-12}" \
    --workers 2 \
    --request-timeout 30 \
    "$@"
