"""Tokens for the tests: good ones from bench.tokens' keys, and every hostile kind echod refuses.

Each hostile token is built by hand where no JOSE library would build it (``alg: none``,
an HMAC signed with a public key's bytes, a stripped signature), so that the tests show
what echod does with what an attacker sends, not what a library allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from bench.tokens import SigningKey, claims, key_set

__all__ = [
    "ROTATION",
    "SigningKey",
    "b64url",
    "bearer",
    "claims",
    "hand_made",
    "hs256_with_public_key",
    "key_set",
    "unsigned",
]


def b64url(data: bytes) -> str:
    """base64url without padding, as JWTs are written (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token: str) -> str:
    """An ``Authorization`` value of the Bearer scheme."""
    return f"Bearer {token}"


def hand_made(header: dict[str, Any], body: dict[str, Any] | bytes, signature: bytes = b"") -> str:
    """A compact JWT from its parts, signed with ``signature`` as given (none by default)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return f"{b64url(json.dumps(header).encode())}.{b64url(raw)}.{b64url(signature)}"


def unsigned(kid: str, **more: Any) -> str:
    """A token with ``alg: none`` and no signature, naming ``kid`` (RFC 7519 section 6)."""
    return hand_made({"alg": "none", "typ": "JWT", "kid": kid}, claims(**more))


def hs256_with_public_key(key: SigningKey, **more: Any) -> str:
    """The algorithm-confusion attack: HS256 keyed with the bytes of ``key``'s public PEM."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = (
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims(**more)).encode())}"
    )
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


#: Seconds a rotation test's tokens are valid.
ROTATION = 600


def now() -> int:
    """The current time, as a NumericDate."""
    return int(time.time())
