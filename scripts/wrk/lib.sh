# shellcheck shell=bash
# Holds driven by wrk, shared by scripts/bench-wrk.sh and scripts/bench-ab.sh -w; source it
# after scripts/lib.sh. Needs curl, python3 and wrk.

wrk_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# wrk_plan URL ADMIN_TOKEN TOKENS_BIN HOLDS TOKENS_FILE PLAN_FILE
# Makes a movie and enough shows (26 rows of 50, as `usher bench` makes them) for HOLDS
# holds through the admin API of the server at URL, and writes PLAN_FILE: one hold a line,
# `TOKEN SHOW SEAT`, as scripts/wrk/holds.lua reads it, each hold its own customer and
# seat. The customers' tokens come from TOKENS_FILE, which TOKENS_BIN (examples/tokens)
# mints first from USHER_JWT_SECRET if it is missing, so that runs against servers sharing
# a secret mint them once.
wrk_plan() {
    local url="$1" admin="$2" tokens_bin="$3" holds="$4" tokens="$5" plan="$6" movie
    _wrk_post() {
        curl -fsS -X POST "$url$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
            -H "Idempotency-Key: wrk-plan-$(random_hex)" -d "$2"
    }
    _wrk_field() {
        python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
    }
    [[ -s "$tokens" ]] || "$tokens_bin" "wrk-$(random_hex | head -c 8)-c" "$holds" >"$tokens"
    movie="$(_wrk_post /v1/movies '{"title": "wrk", "duration_min": 100}' | _wrk_field movie_id)"
    for _ in $(seq 1 $(((holds + 1299) / 1300))); do
        _wrk_post /v1/shows "{\"movie_id\": \"$movie\", \"starts_at\": \"2030-01-01T20:00:00Z\",
            \"auditorium\": {\"rows\": 26, \"seats_per_row\": 50}, \"price_cents\": 1000}" | _wrk_field show_id
    done >"$plan.shows"
    python3 - "$plan.shows" "$tokens" "$holds" >"$plan" <<'PY'
import sys
shows = open(sys.argv[1]).read().split()
tokens = open(sys.argv[2]).read().split()[: int(sys.argv[3])]
for i, token in enumerate(tokens):
    s = i % 1300
    print(token, shows[i // 1300], f"{chr(65 + s // 50)}{s % 50 + 1}")
PY
    rm -f "$plan.shows"
}

# wrk_holds URL SECONDS CONNECTIONS PLAN_FILE OUT_FILE
# Runs wrk (one thread) with scripts/wrk/holds.lua over the plan; its output goes to
# OUT_FILE. The script's last line says how many holds were answered 202 and otherwise.
wrk_holds() {
    WRK_PLAN="$4" WRK_TAG="$(random_hex | head -c 8)" wrk -t1 -c"$3" -d"$2s" -s "$wrk_dir/holds.lua" \
        --latency "$1" >"$5"
}

# commands_left URL ADMIN_TOKEN
# Waits up to two minutes for the booking command queue to hold nothing visible or in
# flight, then prints what it holds and what its DLQ holds: `0 0` when every hold ended.
commands_left() {
    local url="$1" admin="$2" left=""
    for _ in $(seq 1 1200); do
        left="$(curl -fsS "$url/v1/admin/status" -H "Authorization: Bearer $admin" | python3 -c '
import json, sys
q = {q["queue"]: q for q in json.load(sys.stdin)["queues"]}["booking-commands"]
print(q["visible"] + q["in_flight"], q["dlq_depth"])')"
        [[ "${left% *}" == 0 ]] && break
        sleep 0.1
    done
    echo "$left"
}

# holds_ended OUT_FILE LEFT
# Succeeds when wrk's run (OUT_FILE of wrk_holds) had every hold answered 202 and LEFT (of
# commands_left) says the command queue and its DLQ are empty.
holds_ended() {
    grep -q ", 0 answered otherwise" "$1" && [[ "$2" == "0 0" ]]
}
