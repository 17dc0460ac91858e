-- github_push.lua: POST one real GitHub push delivery per request, each with a fresh
-- X-GitHub-Delivery (the body, and so its signature, stay the same), and count non-2xx
-- answers so that a fast error never passes for throughput.
-- usage: wrk ... -s github_push.lua URL -- BODY_FILE SIGNATURE_HEX [RUN_TAG]

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

function init(args)
   local f = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
   local body = f:read("*a")
   f:close()
   local run = args[3] or "run"
   -- The request is prefix .. delivery id .. suffix, built once: only the id changes.
   prefix = "POST " .. wrk.path .. " HTTP/1.1\r\n" ..
      "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
      "User-Agent: GitHub-Hookshot/044aadd\r\n" ..
      "Content-Type: application/json\r\n" ..
      "Content-Length: " .. #body .. "\r\n" ..
      "X-GitHub-Event: push\r\n" ..
      "X-GitHub-Hook-ID: 292430182\r\n" ..
      "X-Hub-Signature-256: sha256=" .. args[2] .. "\r\n" ..
      "X-GitHub-Delivery: "
   suffix = "\r\n\r\n" .. body
   -- UUID-shaped and unique: run tag hash, thread id, a per-thread random part, a counter.
   math.randomseed(os.time() * 1000 + tid)
   idstem = string.format("%08x-%04x-4%03x-%04x-", tonumber(string.sub(run, 1, 8), 16) or 0,
                          tid, math.random(0, 0xfff), math.random(0x8000, 0xbfff))
   counter = 0
   ok, non2xx, statuses, sample = 0, 0, {}, nil
end

function request()
   counter = counter + 1
   return prefix .. idstem .. string.format("%012x", counter) .. suffix
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      non2xx = non2xx + 1
      local k = tostring(status)
      statuses[k] = (statuses[k] or 0) + 1
      if sample == nil then sample = k .. " " .. string.sub(body or "", 1, 300) end
   end
end

function done(summary, latency, requests)
   local okall, badall, by, first = 0, 0, {}, nil
   for _, t in ipairs(threads) do
      okall = okall + t:get("ok")
      badall = badall + t:get("non2xx")
      for k, v in pairs(t:get("statuses")) do by[k] = (by[k] or 0) + v end
      first = first or t:get("sample")
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   -- One machine-readable line for bench/ingest; wrk's own report is printed above it.
   io.write(string.format(
      "BENCH requests=%d ok2xx=%d non2xx=%d rps2xx=%.1f p50_ms=%.2f p99_ms=%.2f " ..
      "max_ms=%.2f duration_s=%.2f err_connect=%d err_read=%d err_write=%d " ..
      "err_timeout=%d err_status=%d\n",
      summary.requests, okall, badall, okall / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      secs, e.connect, e.read, e.write, e.timeout, e.status))
   for k, v in pairs(by) do io.write(string.format("NON2XX status=%s count=%d\n", k, v)) end
   if first then io.write("NON2XX_SAMPLE " .. string.gsub(first, "[\r\n]", " ") .. "\n") end
end
