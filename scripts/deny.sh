#!/usr/bin/env bash
# cargo-deny over the workspace (deny.toml): licences, bans (duplicate majors warn), sources
# and, when the RustSec advisory database can be fetched, advisories.
#
# Installs cargo-deny with `cargo install --locked` unless it is on the PATH already (the
# binary in ~/.cargo/bin is the cache). The advisory database is cloned from GitHub; where
# GitHub is unreachable (the dev machines reach only package registries), the advisories
# check is skipped with a message and the other three still run. The GitHub workflow
# (.github/workflows/ci.yml, job cargo-deny) always runs all four.
#
#   USHER_SKIP_DENY=1 scripts/deny.sh    skips everything, saying so
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${USHER_SKIP_DENY:-}" == 1 ]]; then
    echo "deny.sh: skipped (USHER_SKIP_DENY=1)"
    exit 0
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "deny.sh: installing cargo-deny (cargo install --locked; cached in ~/.cargo/bin)" >&2
    cargo install --locked cargo-deny
fi

checks=(licenses bans sources)
if git ls-remote --exit-code https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    checks=(advisories "${checks[@]}")
else
    echo "deny.sh: github.com is unreachable, so the RustSec advisory database cannot be fetched:" \
        "skipping the advisories check here (CI on GitHub runs it)" >&2
fi
echo "deny.sh: cargo deny check ${checks[*]}"
cargo deny --locked check "${checks[@]}"
