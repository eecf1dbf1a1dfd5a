-- wrk script: POST one SendRequest per call, each with its own id (wrk's counter per thread).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
end

request = function()
  counter = counter + 1
  local id = string.format("wrk-%d-%d", thread_id, counter)
  local body = '{"id":"' .. id .. '","provider":"gewe","type":"text","to":"34757816141@chatroom",' ..
               '"body":{"text":"load test"}}'
  return wrk.format("POST", "/v1/messages", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("SUMMARY requests=%d errors_status=%d duration_s=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
