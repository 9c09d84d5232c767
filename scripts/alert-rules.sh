#!/usr/bin/env bash
# Checks and unit-tests the Prometheus alert rules (ops/prometheus/alerts.yml) with
# `promtool check rules` and `promtool test rules` (ops/prometheus/alerts.test.yml), and
# that the Grafana dashboard (ops/grafana/usher.json) is well-formed JSON. promtool comes
# from the `prometheus` apt package, installed if missing (apt-get, as root or with sudo).
# USHER_SKIP_ALERT_RULES=1 skips it with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${USHER_SKIP_ALERT_RULES:-}" == 1 ]]; then
    echo "== alert rules: skipped (USHER_SKIP_ALERT_RULES=1)"
    exit 0
fi
if ! command -v promtool >/dev/null 2>&1; then
    echo "== alert rules: installing promtool (apt package prometheus)"
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "== alert rules: $(promtool --version 2>&1 | head -n 1)"
promtool check rules ops/prometheus/alerts.yml
(cd ops/prometheus && promtool test rules alerts.test.yml)
python3 -m json.tool ops/grafana/usher.json >/dev/null
echo "== alert rules and dashboard: ok"
