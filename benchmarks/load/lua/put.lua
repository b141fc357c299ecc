-- Raw PUT /{name} of text files, a new body per request.
--   wrk ... -s put.lua URL -- BODY_BYTES DUP_SHARE NONCE
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local size, dup_share, nonce = 65536, 0, "0"
local filler
local counter = 0
local headers = {}

function setup(thread)
   report.setup(thread)
end

function init(args)
   size = tonumber(args[1]) or size
   dup_share = tonumber(args[2]) or 0
   nonce = args[3] or nonce
   filler = report.text(size)
   headers["Content-Type"] = "text/plain"
   headers["Accept"] = "application/json"
end

report.count_statuses()

function request()
   counter = counter + 1
   local name, content = report.body(filler, nonce, id or 0, counter, dup_share, 8)
   return wrk.format("PUT", "/" .. name, headers, content)
end

function done(summary, latency, requests)
   report.done(summary, latency)
end
