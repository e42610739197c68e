-- wrk script for `mlflow models serve`: POST /invocations with one fixed body
-- (precomputed feature rows in the dataframe_split format, written by
-- train_mlflow_model.py).
--
--   wrk -t T -c C ... -s mlflow.lua http://127.0.0.1:PORT/invocations -- BODY_FILE
--
-- Results (JSON, the same fields as vigil.lua's) go to the file named by VIGIL_WRK_OUT.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  ok, bad, codes, first_error = 0, 0, {}, nil
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
  local ok_total, bad_total, merged, err = 0, 0, {}, nil
  for _, thread in ipairs(threads) do
    ok_total = ok_total + (thread:get("ok") or 0)
    bad_total = bad_total + (thread:get("bad") or 0)
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
    '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes, ok_total, bad_total, table.concat(codes, ","),
    e.connect, e.read, e.write, e.timeout, err and json_string(err) or "null",
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
  out:close()
end
