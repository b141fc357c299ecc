-- Multipart POST / of camera JPEGs (benchmarks/load/photos.py), each upload unique.
--   wrk ... -s photo.lua URL -- INDEX NONCE
-- INDEX lists the photos, one a line: placeholder offset (0-based), its
-- length, path (tab-separated).  Request n of thread `id` sends photo
-- (id + n) mod count, round-robin, with the placeholder (a JPEG comment)
-- overwritten by "NONCE id n" padded with dots: new bytes, no re-encoding.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local boundary = "pastefileLoadBoundary5b1c0e7a9d"
local nonce = "0"
local before, after, widths = {}, {}, {}
local count = 0
local counter = 0
local headers = {}

function setup(thread)
   report.setup(thread)
end

local function slurp(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function init(args)
   local index = assert(args[1], "usage: photo.lua INDEX NONCE")
   nonce = args[2] or nonce
   for line in io.lines(index) do
      local offset, width, path = line:match("^(%d+)\t(%d+)\t(.+)$")
      if offset then
         offset, width = tonumber(offset), tonumber(width)
         local data = slurp(path)
         count = count + 1
         -- the bytes before and after the placeholder, the form's framing included
         before[count] = data:sub(1, offset)
         after[count] = data:sub(offset + width + 1) .. "\r\n--" .. boundary .. "--\r\n"
         widths[count] = width
      end
   end
   assert(count > 0, "no photos in " .. index)
   headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
   headers["Accept"] = "application/json"
end

report.count_statuses()

function request()
   counter = counter + 1
   local i = ((id or 0) + counter) % count + 1
   local token = string.format("%s %d %d", nonce, id or 0, counter)
   token = token:sub(1, widths[i]) .. string.rep(".", widths[i] - #token)
   local body = "--" .. boundary .. "\r\n"
      .. 'Content-Disposition: form-data; name="file"; filename="IMG_' .. (id or 0) .. "_" .. counter .. '.jpg"\r\n'
      .. "Content-Type: image/jpeg\r\n\r\n"
      .. before[i] .. token .. after[i]
   return wrk.format("POST", "/", headers, body)
end

function done(summary, latency, requests)
   report.done(summary, latency)
end
