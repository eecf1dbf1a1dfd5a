-- wrk script for the HTTP ceiling of benchmarks/e2e/run: POSTs the benchmark's request bodies
-- to the provider paths of the stub, round robin. The run script writes the calls to the file
-- named by WRK_CALLS, one "<path>\t<body>" per line.
local calls = {}
local n = 0

function init(args)
  for line in io.lines(os.getenv("WRK_CALLS")) do
    local path, body = line:match("^([^\t]*)\t(.*)$")
    calls[#calls + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
  end
end

request = function()
  n = n % #calls + 1
  return calls[n]
end

function done(summary, latency, requests)
  io.write(string.format("SUMMARY requests=%d errors=%d duration_s=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
