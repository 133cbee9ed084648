-- reference: the authenticated POST of {"foo": "bar"} (user remarkablebob), as the
-- Go comparison uses it. The body is the same every time, as in that comparison.
wrk.method = "POST"
wrk.body   = '{"foo": "bar"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic cmVtYXJrYWJsZWJvYjoyckZ0ZXg="
