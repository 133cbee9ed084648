-- put: authenticated PUTs of a small object whose id changes every request.
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

request = function()
   local body = '{"foo": "bar", "id": ' .. common.next() .. '}'
   return wrk.format("PUT", nil, { ["Authorization"] = common.auth, ["Content-Type"] = "application/json" }, body)
end
