#!/usr/bin/env bash
# Runs every test. It starts a moto server (a real AWS API: SQS, SNS, DynamoDB) on a free
# loopback port, installing moto[server] with pip if it is missing, then:
#   1. the whole workspace: unit, port contract (embedded and aws), API and end-to-end
#      tests on the embedded backend;
#   2. the end-to-end and API tests again with the app on the aws backend
#      (USHER_TEST_BACKEND=aws).
# Extra arguments go to both cargo test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/moto.sh -- bash -c '
    set -euo pipefail
    echo "== embedded backend (and the aws port contract suite)"
    cargo test --workspace --locked "$@"
    echo "== end-to-end tests on the aws backend"
    # --workspace keeps the feature set of run 1, so nothing is rebuilt.
    USHER_TEST_BACKEND=aws cargo test --workspace --locked \
        --test booking_flow --test downstream --test tickets --test api --test faults "$@"
' usher-tests "$@"
