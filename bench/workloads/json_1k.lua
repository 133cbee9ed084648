-- json_1k: authenticated POSTs of a 1 KB JSON object whose id changes every request.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")
local tail = common.object(0, 1024):sub(#'{"id": 0' + 1)

request = function()
   local body = '{"id": ' .. common.next() .. tail
   return wrk.format("POST", nil, { ["Authorization"] = common.auth, ["Content-Type"] = "application/json" }, body)
end
