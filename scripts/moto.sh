#!/usr/bin/env bash
# Starts moto_server (a real AWS API implementation: SQS, SNS, DynamoDB) on a free
# loopback port, installing `moto[server]` with pip if it is missing. DynamoDB calls are
# serialized inside moto (see MOTO_SERVER_PY below) so its transactions are isolated
# as on AWS.
#
#   scripts/moto.sh                 start moto, print its endpoint, run until Ctrl-C
#   scripts/moto.sh -- CMD ARGS...  start moto, run CMD with AWS_ENDPOINT_URL,
#                                   AWS_REGION=us-east-1 and test credentials
#                                   exported, stop moto, exit with CMD's status
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log_dir="$(mktemp -d "${TMPDIR:-/tmp}/usher-moto.XXXXXX")"
log="$log_dir/moto.log"
pid=""

stop() {
    stop_pids "$pid"
    rm -rf "$log_dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

has_moto() {
    python3 -c 'import moto.server, moto.dynamodb.models, flask' >/dev/null 2>&1
}

ensure_moto() {
    if has_moto; then
        return
    fi
    echo "moto.sh: moto_server not found; installing moto[server] with pip" >&2
    python3 -m pip install --quiet 'moto[server]' \
        || python3 -m pip install --quiet --user 'moto[server]' \
        || python3 -m pip install --quiet --break-system-packages 'moto[server]'
    has_moto || { echo "moto.sh: cannot install moto[server]" >&2; exit 1; }
}

# moto_server, with one fix: moto's DynamoDB is not safe under concurrent requests
# (a cancelled TransactWriteItems restores whole tables from a copy taken before it
# began, undoing what other requests committed meanwhile). Real DynamoDB serializes
# transactions, so every call into moto's DynamoDB backend takes one lock here. SQS
# long polls and everything else stay concurrent.
MOTO_SERVER_PY='
import functools, inspect, threading
from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()

def _serialized(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with _lock:
            return fn(*args, **kwargs)
    return call

for _name, _fn in list(vars(DynamoDBBackend).items()):
    if inspect.isfunction(_fn) and not _name.startswith("_"):
        setattr(DynamoDBBackend, _name, _serialized(_fn))

from moto.server import main
main()
'

# Waits until moto answers on its own API, or gives up (moto died, or 30 s passed).
wait_ready() {
    local url="$1"
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if python3 - "$url" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1).read()
PY
            return 0
        fi
        sleep 0.1
    done
    return 1
}

start() {
    # The port is free when asked, but another process may take it before moto binds it:
    # try a few ports.
    for _ in 1 2 3; do
        local port
        port="$(free_port)"
        python3 -c "$MOTO_SERVER_PY" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
        pid=$!
        endpoint="http://127.0.0.1:$port"
        if wait_ready "$endpoint"; then
            return 0
        fi
        stop_pids "$pid"
        pid=""
    done
    echo "moto.sh: moto_server did not start; its log:" >&2
    cat "$log" >&2 || true
    exit 1
}

ensure_moto
start

export AWS_ENDPOINT_URL="$endpoint"
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test

if [[ "${1:-}" == "--" ]]; then
    shift
    [[ $# -gt 0 ]] || { echo "moto.sh: nothing to run after --" >&2; exit 2; }
    echo "moto.sh: moto at $endpoint" >&2
    status=0
    "$@" || status=$?
    exit "$status"
fi

echo "$endpoint"
cat >&2 <<EOF
moto is running; in another shell:
  export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
Ctrl-C stops it.
EOF
wait "$pid"
