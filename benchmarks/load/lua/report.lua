-- Shared by the load scripts: per-thread status counting and one JSON line
-- at the end that benchmarks/load/wrk.py parses.
--
-- A script that wants non-2xx counted defines response() through
-- report.count_statuses(); the read script does not (a Lua response()
-- callback makes wrk copy every body into Lua, which slows the client).

report = {}
report.threads = {}

-- Call from setup(thread): numbers the threads (global `id` in each).
function report.setup(thread)
   thread:set("id", #report.threads)
   table.insert(report.threads, thread)
end

function report.count_statuses()
   responses = 0
   non2xx = 0
   function response(status, headers, body)
      responses = responses + 1
      if status < 200 or status > 299 then
         non2xx = non2xx + 1
      end
   end
end

local function number(x)
   if x == nil or x ~= x then
      return "null"
   end
   return string.format("%.3f", x)
end

function report.done(summary, latency, extra)
   local counted, bad = nil, nil
   for _, thread in ipairs(report.threads) do
      local r = thread:get("responses")
      if r ~= nil then
         counted = (counted or 0) + r
         bad = (bad or 0) + (thread:get("non2xx") or 0)
      end
   end
   local e = summary.errors
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"duration_us": %d', summary.duration),
      string.format('"bytes_read": %d', summary.bytes),
      string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us": {"p50": %s, "p90": %s, "p99": %s, "mean": %s, "max": %s}',
                    number(latency:percentile(50)), number(latency:percentile(90)),
                    number(latency:percentile(99)), number(latency.mean), number(latency.max)),
      string.format('"responses_counted": %s', counted and tostring(counted) or "null"),
      string.format('"non2xx": %s', bad and tostring(bad) or "null"),
   }
   for key, value in pairs(extra or {}) do
      table.insert(fields, string.format('"%s": %s', key, value))
   end
   io.write("PASTEFILE_WRK_RESULT {" .. table.concat(fields, ", ") .. "}\n")
end

-- Plain ASCII text of exactly n bytes (libmagic sniffs it as text/plain).
function report.text(n)
   local line = "pastefile load comparison: the quick brown fox jumps over the lazy dog 0123456789\n"
   local s = string.rep(line, math.floor(n / #line) + 1)
   return s:sub(1, n)
end

-- Body number `counter` of thread `id`: unique (the run's nonce, the thread
-- and the counter) unless this request falls in the duplicate share, which
-- cycles over `dup_set` bodies fixed for the server's lifetime (the same
-- name and bytes in every run).  The first line carries the key, the rest is
-- the precomputed filler.
function report.body(filler, nonce, id, counter, dup_share, dup_set)
   local key, name
   if dup_share > 0 and math.floor(counter * dup_share) > math.floor((counter - 1) * dup_share) then
      local k = counter % dup_set
      key = string.format("duplicate %d\n", k)
      name = string.format("dup-%d.txt", k)
   else
      key = string.format("unique %s %d %d\n", nonce, id, counter)
      name = string.format("u-%d-%d.txt", id, counter)
   end
   return name, key .. filler:sub(#key + 1)
end
