-- Shared by every scenario: bearer token and body from the environment, one JSON line of
-- results at the end (latencies in microseconds).
local token = os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_BODY")
local if_none_match = os.getenv("BENCH_IF_NONE_MATCH")
local step = os.getenv("BENCH_STEP")
if step and step ~= "" then
  wrk.headers["X-Ladder"] = step
end
wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if if_none_match and if_none_match ~= "" then
  wrk.headers["If-None-Match"] = if_none_match
end
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local ids = nil
local ids_file = os.getenv("BENCH_IDS_FILE")
if ids_file and ids_file ~= "" then
  ids = {}
  for line in io.lines(ids_file) do
    ids[#ids + 1] = line
  end
end

function init(args)
  math.randomseed(12345)
end

function request()
  if ids then
    return wrk.format(nil, wrk.path .. ids[math.random(#ids)] .. "/")
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
