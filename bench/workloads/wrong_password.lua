-- wrong_password: POSTs with a wrong password (401 expected, every time the same one,
-- as a misconfigured client would send it).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local common = require("common")
local wrong = "Basic cmVtYXJrYWJsZWJvYjp3cm9uZw=="  -- remarkablebob:wrong

request = function()
   local body = '{"foo": "bar", "id": ' .. common.next() .. '}'
   return wrk.format("POST", nil, { ["Authorization"] = wrong, ["Content-Type"] = "application/json" }, body)
end
