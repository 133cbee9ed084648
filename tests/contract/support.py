"""What the contract tests share: how hard they try, public paths, request id shapes."""

from __future__ import annotations

import os
import re

#: ``make fuzz`` sets CONTRACT_FUZZ=1 to run the same tests with many more examples.
FUZZ = os.environ.get("CONTRACT_FUZZ") == "1"
#: Examples schemathesis generates for each operation (on top of its coverage cases).
SCHEMATHESIS_EXAMPLES = 1000 if FUZZ else 50
#: Examples of each property sent through the app in this process.
IN_PROCESS_EXAMPLES = 2000 if FUZZ else 300
#: Examples of each property sent to a live echod.
LIVE_EXAMPLES = 500 if FUZZ else 40
#: Answered to GET and HEAD without credentials, and neither logged nor counted.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json"})
#: What echod keeps of a client's X-Request-ID; anything else is replaced by a UUID4.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
