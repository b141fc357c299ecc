-- Multipart POST / of text files, a new body per request.
--   wrk ... -s upload.lua URL -- BODY_BYTES DUP_SHARE NONCE
-- DUP_SHARE (0..1) of the requests reuse one of 8 fixed bodies (same name,
-- same bytes); the others are unique through thread id + counter + NONCE.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local boundary = "pastefileLoadBoundary5b1c0e7a9d"
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
   headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
   headers["Accept"] = "application/json"
end

report.count_statuses()

function request()
   counter = counter + 1
   local name, content = report.body(filler, nonce, id or 0, counter, dup_share, 8)
   local body = "--" .. boundary .. "\r\n"
      .. 'Content-Disposition: form-data; name="file"; filename="' .. name .. '"\r\n'
      .. "Content-Type: text/plain\r\n\r\n"
      .. content
      .. "\r\n--" .. boundary .. "--\r\n"
   return wrk.format("POST", "/", headers, body)
end

function done(summary, latency, requests)
   report.done(summary, latency)
end
