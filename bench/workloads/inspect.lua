-- inspect: GET /api/inspect without controls, the baseline of the scenario workload: the
-- same report, without the state.
wrk.method = "GET"
wrk.headers["Authorization"] = "Basic cmVtYXJrYWJsZWJvYjoyckZ0ZXg="  -- remarkablebob:2rFtex
