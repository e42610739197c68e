-- wrk script for vigil `serve`: POST /predict with batches of raw telemetry.
--
--   wrk -t T -c T ... -s vigil.lua http://127.0.0.1:PORT/predict -- BATCH MACHINES THREADS START STEP
--
-- One connection per wrk thread (-t = -c), and every thread owns a disjoint set
-- of machines (ids M00000.. with index % THREADS == thread id): a machine's
-- samples then leave one connection, one request at a time, so its clock only
-- moves forward at the server. Sample k of a thread goes to its machine
-- k % owned at START + (k // owned) * STEP seconds (Unix time, UTC). The run's
-- latest sample time is written out, so the next run on the same server starts
-- after it. Results (JSON) go to the file named by VIGIL_WRK_OUT.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local batch, owned, start, step
local machines = {}
local k = 0
local fragments = {}

function init(args)
  batch = tonumber(args[1])
  local total = tonumber(args[2])
  local nthreads = tonumber(args[3])
  start = tonumber(args[4])
  step = tonumber(args[5])
  for i = tid, total - 1, nthreads do
    table.insert(machines, string.format('{"machine_id":"M%05d","time":"', i))
  end
  owned = #machines
  if owned == 0 then error("thread " .. tid .. " owns no machine: use fewer threads than machines") end
  -- Sensor values around the simulator's operating point, formatted once.
  math.randomseed(1000 + tid)
  for i = 1, 97 do
    fragments[i] = string.format(
      '","temperature":%.2f,"vibration":%.3f,"spindle_speed":%.0f,"power_consumption":%.2f}',
      70 + 5 * math.random(), 0.4 + 0.2 * math.random(), 1450 + 100 * math.random(), 11 + 2 * math.random())
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  ok, bad, codes, first_error, last_time = 0, 0, {}, nil, 0
end

function request()
  local parts = {}
  for i = 1, batch do
    local t = start + math.floor(k / owned) * step
    parts[i] = machines[(k % owned) + 1] .. os.date("!%Y-%m-%dT%H:%M:%S", t) .. "Z" .. fragments[(k % 97) + 1]
    last_time = t
    k = k + 1
  end
  return wrk.format(nil, nil, nil, '{"samples":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    local key = tostring(status)
    codes[key] = (codes[key] or 0) + 1
    if first_error == nil then first_error = string.sub(body or "", 1, 300) end
  end
end

local function json_string(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local ok_total, bad_total, latest, merged, err = 0, 0, 0, {}, nil
  for _, thread in ipairs(threads) do
    ok_total = ok_total + (thread:get("ok") or 0)
    bad_total = bad_total + (thread:get("bad") or 0)
    latest = math.max(latest, thread:get("last_time") or 0)
    for code, n in pairs(thread:get("codes") or {}) do merged[code] = (merged[code] or 0) + n end
    err = err or thread:get("first_error")
  end
  local codes = {}
  for code, n in pairs(merged) do table.insert(codes, string.format('"%s":%d', code, n)) end
  local e = summary.errors
  local out = io.open(os.getenv("VIGIL_WRK_OUT"), "w")
  out:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"bytes":%d,"ok":%d,"non_2xx":%d,"status_codes":{%s},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"first_error":%s,' ..
    '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},"latest_sample_time":%d}\n',
    summary.requests, summary.duration / 1e6, summary.bytes, ok_total, bad_total, table.concat(codes, ","),
    e.connect, e.read, e.write, e.timeout, err and json_string(err) or "null",
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, latest))
  out:close()
end
