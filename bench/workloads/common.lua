-- Shared by the workloads: a per-thread counter, so that every body differs from the last
-- and nothing can be answered from a cache.
local common = {}

common.auth = "Basic cmVtYXJrYWJsZWJvYjoyckZ0ZXg="  -- remarkablebob:2rFtex
common.counter = 0

function common.next()
   common.counter = common.counter + 1
   return common.counter
end

-- A JSON object of about `size` bytes: an id that changes, then padding fields.
function common.object(id, size)
   local parts = { '{"id": ' .. id }
   local length = #parts[1]
   local n = 0
   while length < size - 40 do
      local field = string.format(', "field%04d": "%s"', n, string.rep("x", 24))
      parts[#parts + 1] = field
      length = length + #field
      n = n + 1
   end
   parts[#parts + 1] = "}"
   return table.concat(parts)
end

return common
