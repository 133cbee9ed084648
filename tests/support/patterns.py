"""Shapes the tests check values against."""

from __future__ import annotations

import re

#: A random UUID (RFC 9562 version 4), as echod makes request ids.
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
#: What echod keeps of a client's X-Request-ID; anything else is replaced by a UUID4.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
