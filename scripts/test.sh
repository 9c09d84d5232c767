#!/usr/bin/env bash
# Runs every test: unit, port contract, API and end-to-end tests on the embedded backend,
# and the AWS ones against a moto server this script starts on a free loopback port
# (installing moto[server] with pip if it is missing). Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/moto.sh -- cargo test --workspace --locked "$@"
