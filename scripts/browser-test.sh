#!/usr/bin/env bash
# The web page in a real browser: starts `usher dev` on a free port with a temp data dir,
# runs tests/browser (Debian's chromium driven by playwright-core, no Playwright browser
# download), and stops it. Installs what is missing: chromium (apt-get), node and npm
# (apt-get; Debian 12's node 18 will do), the test's npm packages (`npm ci`, cached in
# tests/browser/node_modules).
#
# The binary is $USHER_BIN, else ${CARGO_TARGET_DIR:-target}/debug/usher (built if
# missing). `--screenshots` writes the screenshots to docs/screenshots/ (the README shows
# them); otherwise they go to $USHER_SCREENSHOTS if set, or nowhere.
# USHER_SKIP_BROWSER_TESTS=1 skips the whole thing with a message.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

if [[ "${USHER_SKIP_BROWSER_TESTS:-}" == 1 ]]; then
    echo "== browser tests skipped (USHER_SKIP_BROWSER_TESTS=1)"
    exit 0
fi
if [[ "${1:-}" == --screenshots ]]; then
    export USHER_SCREENSHOTS="$PWD/docs/screenshots"
elif [[ -n "${USHER_SCREENSHOTS:-}" ]]; then
    # Relative to the repository root; the tests run from tests/browser.
    USHER_SCREENSHOTS="$(realpath -m "$USHER_SCREENSHOTS")"
    export USHER_SCREENSHOTS
fi

chromium="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$chromium" ]] || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm
export CHROMIUM="$chromium"

# npm ci again only when the lock file changed since the last install.
(
    cd tests/browser
    if ! cmp -s package-lock.json node_modules/.package-lock.json.ci 2>/dev/null; then
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
        cp package-lock.json node_modules/.package-lock.json.ci
    fi
)

usher="${USHER_BIN:-${CARGO_TARGET_DIR:-target}/debug/usher}"
if [[ ! -x "$usher" ]]; then
    echo "== building usher"
    cargo build --locked --bin usher
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/usher-browser.XXXXXX")"
pid=""
cleanup() {
    stop_pids "$pid"
    rm -rf "$work"
}
trap cleanup EXIT

# Quick retries and 8 receives before the DLQ: a `tok_unavailable` payment shows
# "retrying" for a few seconds, then is dead-lettered, so the ops test has a real dead
# message to replay.
USHER_DATA_DIR="$work/data" USHER_HTTP_ADDR=127.0.0.1:0 USHER_LOG=warn \
    USHER_MAX_RECEIVES=8 USHER_RETRY_BASE_MS=1000 USHER_RETRY_MAX_MS=1000 \
    env -u USHER_BACKEND -u USHER_JWT_SECRET "$usher" dev >"$work/stdout" 2>"$work/stderr" &
pid=$!
url="" token=""
for _ in $(seq 1 300); do
    url="$(sed -n 's/^usher is listening on //p' "$work/stdout")"
    token="$(sed -n 's/^admin token (24 h): //p' "$work/stdout")"
    [[ -n "$url" && -n "$token" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "usher dev exited:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    sleep 0.2
done
if [[ -z "$url" || -z "$token" ]]; then
    echo "usher dev printed no address within 60 s" >&2
    cat "$work/stderr" >&2
    exit 1
fi

echo "== browser tests against $url ($("$chromium" --version 2>/dev/null || echo chromium))"
status=0
(cd tests/browser && USHER_URL="$url" USHER_ADMIN_TOKEN="$token" npm test --silent) || status=$?
if [[ $status -ne 0 ]]; then
    echo "== usher dev's log (last 50 lines)" >&2
    tail -n 50 "$work/stderr" >&2
fi
exit "$status"
