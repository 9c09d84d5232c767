-- wrk: one hold of a fresh seat per request, as `usher bench --scenario holds` sends it
-- (scripts/bench-wrk.sh). WRK_PLAN names a file of one line per hold, `TOKEN SHOW SEAT`:
-- each hold has its own customer and its own seat. Each request carries a fresh
-- Idempotency-Key. Run it with one thread (-t1): the plan is read by that thread alone.
local path = os.getenv("WRK_PLAN")
assert(path, "WRK_PLAN is not set")
local plan = {}
for line in io.lines(path) do
  plan[#plan + 1] = line
end
local tag = os.getenv("WRK_TAG") or tostring(os.time())
-- Globals, so that done() can read them with thread:get().
sent, accepted, refused = 0, 0, 0

request = function()
  sent = sent + 1
  -- Past the plan, the last hold again under a new key: a 409 or 422, counted as refused.
  local token, show, seat = plan[math.min(sent, #plan)]:match("(%S+) (%S+) (%S+)")
  return wrk.format("POST", "/v1/holds", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "wrk-" .. tag .. "-" .. sent,
  }, '{"show_id":"' .. show .. '","seat_ids":["' .. seat .. '"]}')
end

response = function(status)
  if status == 202 then accepted = accepted + 1 else refused = refused + 1 end
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

done = function(summary, latency)
  local a, r = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    r = r + t:get("refused")
  end
  io.write(string.format("holds: %d answered 202, %d answered otherwise; latency p50 %.1f ms, p99 %.1f ms\n",
    a, r, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
