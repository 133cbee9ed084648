-- bearer: the reference echo of {"foo": "bar"}, authenticated with a bearer token (an
-- ES256 JWT) instead of Basic, the same token every time as a client sends it. The token
-- comes from ECHOD_BENCH_TOKEN: bench.run makes it, with the key set it starts echod with
-- (python -m bench.tokens --out DIR writes both, for a run of your own).
local token = os.getenv("ECHOD_BENCH_TOKEN")
if token == nil or token == "" then
   error("ECHOD_BENCH_TOKEN is not set: python -m bench.tokens --out DIR writes a token")
end
wrk.method = "POST"
wrk.body   = '{"foo": "bar"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
