-- The reference workload: an authenticated POST of {"foo": "bar"} (user remarkablebob).
wrk.method = "POST"
wrk.body   = '{"foo": "bar"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic cmVtYXJrYWJsZWJvYjoyckZ0ZXg="
