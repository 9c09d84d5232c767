-- wrk: POST {} as JSON, for the hello-world baseline (scripts/bench-wrk.sh).
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
