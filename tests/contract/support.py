"""What the contract tests share: how hard they try, and the public paths."""

from __future__ import annotations

import os

from echod.routes import ROUTES

#: ``make fuzz`` sets CONTRACT_FUZZ=1 to run the same tests with many more examples.
FUZZ = os.environ.get("CONTRACT_FUZZ") == "1"
#: Examples schemathesis generates for each operation (on top of its coverage cases).
SCHEMATHESIS_EXAMPLES = 1000 if FUZZ else 50
#: Examples of each property sent through the app in this process.
IN_PROCESS_EXAMPLES = 2000 if FUZZ else 300
#: Examples of each property sent to a live echod.
LIVE_EXAMPLES = 500 if FUZZ else 40
#: Answered to GET and HEAD without credentials, and neither logged nor counted.
PUBLIC_PATHS = frozenset(route.path for route in ROUTES if route.probe)
