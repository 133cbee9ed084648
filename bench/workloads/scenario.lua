-- scenario: GET /api/inspect?key=bench&fail=0, every request an attempt under one key:
-- counted, logged (the log keeps its last 1,000) and answered with the report. The state
-- is the runtime directory's, or Redis with --state (python -m bench.scenarios runs both).
wrk.method = "GET"
wrk.headers["Authorization"] = "Basic cmVtYXJrYWJsZWJvYjoyckZ0ZXg="  -- remarkablebob:2rFtex
