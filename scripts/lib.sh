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

# Prints 32 random bytes in hex: a throwaway JWT secret for a server a script starts.
random_hex() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# Waits until URL answers with a success, to a GET or (for a server that only takes POST,
# like the hello-world) to an empty JSON POST: TRIES tries 0.1 s apart (default 100).
# Returns 1, naming the URL, if it never does.
wait_for() {
    local url="$1" tries="${2:-100}"
    for _ in $(seq 1 "$tries"); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null ||
            curl -fsS -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "${0##*/}: $url did not come up" >&2
    return 1
}

# Installs the given Debian packages with apt-get (through sudo when not root), quietly.
apt_install() {
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    echo "== installing $* (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}
