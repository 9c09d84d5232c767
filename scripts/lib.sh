# shellcheck shell=bash
# Helpers the scripts share; source it: source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Prints a TCP port free on loopback now. Another process may take it before the caller
# binds it; callers that start a server on it retry or wait for it to answer.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Stops the processes named by the pids given (empty arguments are skipped) and reaps
# them; what already exited is no error. For the scripts' EXIT traps.
stop_pids() {
    local pid
    for pid in "$@"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}

# Exits 2 unless every argument after the first is LABEL=BINARY with an executable BINARY;
# the first names the calling script in the message. For the scripts that compare builds.
require_builds() {
    local script="$1" build
    shift
    for build in "$@"; do
        if [[ "$build" != *=* || ! -x "${build#*=}" ]]; then
            echo "$script: $build is not LABEL=BINARY with an executable BINARY" >&2
            exit 2
        fi
    done
}
