-- mix: in turn, a valid echo, a body that is not JSON (400) and no credentials (401).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")

request = function()
   local n = common.next()
   local kind = n % 3
   if kind == 0 then
      return wrk.format("POST", nil, { ["Authorization"] = common.auth }, '{"foo": "bar", "id": ' .. n .. '}')
   elseif kind == 1 then
      return wrk.format("POST", nil, { ["Authorization"] = common.auth }, '{"foo": bar' .. n)
   end
   return wrk.format("POST", nil, {}, '{"foo": "bar", "id": ' .. n .. '}')
end
