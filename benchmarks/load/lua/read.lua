-- GET round-robin over the paths listed in a file, one per line.
--   wrk ... -s read.lua URL -- PATHS_FILE
-- Each thread starts at its own offset.  Statuses >= 400 show up in wrk's
-- own error count; redirects (/s/) count as answers.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local requests_ = {}
local index = 0

function setup(thread)
   report.setup(thread)
end

function init(args)
   local f = assert(io.open(args[1], "r"))
   for line in f:lines() do
      if #line > 0 then
         table.insert(requests_, wrk.format("GET", line))
      end
   end
   f:close()
   assert(#requests_ > 0, "no paths in " .. args[1])
   index = ((id or 0) * 7) % #requests_
end

function request()
   index = index % #requests_ + 1
   return requests_[index]
end

function done(summary, latency, requests)
   report.done(summary, latency, {paths = #requests_})
end
