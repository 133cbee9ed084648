-- health: GET /health, the liveness probe (no auth, not logged, not counted).
request = function()
   return wrk.format("GET", "/health")
end
