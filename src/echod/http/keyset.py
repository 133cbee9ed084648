"""Key set: the JSON Web Key Set (RFC 7517) that bearer tokens are verified with, by PyJWT.

This is the one module that imports the JOSE library, PyJWT on pyca/cryptography. It
is imported only when ``--jwt-jwks`` is set (by the worker's factory, and by the
supervisor as it checks the file), so that an echod without it loads neither.

The set holds public keys only, each with its ``kid``. A token names its key by
``kid`` and its algorithm by ``alg``; the algorithm must be one of :data:`ALGORITHMS`
and fit the key's type (RSA: RS256-512 and PS256-512; EC P-256: ES256; EC P-384:
ES384; OKP Ed25519 or Ed448: EdDSA), or the key's own ``alg`` when it names one. So
``alg: none`` and the HMAC algorithms are never accepted, and a public key is never
used as an HMAC secret. Several keys may be live at once, as during a rotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from echod.http.problems import InvalidToken

__all__ = ["ALGORITHMS", "MIN_RSA_BITS", "KeySet", "Policy"]

#: The algorithms a token may be signed with: asymmetric ones only (RFC 7518, RFC 8037).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
#: The smallest RSA key taken (RFC 7518 section 3.3 asks for 2048 bits).
MIN_RSA_BITS = 2048
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# The algorithms each type of key (and curve) verifies.
_FITTING: dict[tuple[object, object], tuple[str, ...]] = {
    ("RSA", None): _RSA,
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-384"): ("ES384",),
    ("OKP", "Ed25519"): ("EdDSA",),
    ("OKP", "Ed448"): ("EdDSA",),
}
# The private parameters of RSA, EC and OKP keys (RFC 7518 section 6).
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})
# PyJWT's refusals, in words that quote nothing of the token.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired (exp)"),
    (jwt.InvalidAudienceError, "the token is not for this audience (aud)"),
    (jwt.InvalidIssuerError, "the token's issuer (iss) is not trusted"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm (alg) does not fit its key"),
    (InvalidSubjectError, "the token's sub claim is not a string"),
    (jwt.InvalidIssuedAtError, "the token's iat claim is not a number"),
    (InvalidJTIError, "the token's jti claim is not a string"),
)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a verified token must also satisfy, beyond its signature."""

    #: The ``iss`` values accepted; empty: any.
    issuers: tuple[str, ...] = ()
    #: The ``aud`` values, one of which a token must name; empty: not checked.
    audiences: tuple[str, ...] = ()
    #: Seconds of clock skew allowed on ``exp`` and ``nbf``.
    leeway: float = 30.0


class KeySet:
    """The keys of a JWKS by ``kid``, each ready for the algorithms that fit it."""

    def __init__(self, keys: dict[str, dict[str, PyJWK]]) -> None:
        """Hold ``keys``: for each ``kid``, a key for each algorithm it verifies."""
        self._keys = keys

    @classmethod
    def parse(cls, data: bytes) -> KeySet:
        """The key set of a JWKS document.

        Keys whose ``use`` is ``enc`` are left out: they are for encryption.

        Raises:
            ValueError: it is not a JWKS of public keys that each have their own
                ``kid`` and fit an accepted algorithm; the message says which key.
        """
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            raise ValueError("not JSON") from None
        if type(document) is not dict or type(document.get("keys")) is not list:
            raise ValueError('not a JSON Web Key Set: expected {"keys": [...]}')
        keys: dict[str, dict[str, PyJWK]] = {}
        for number, jwk in enumerate(document["keys"], start=1):
            if type(jwk) is not dict:
                raise ValueError(f"key {number} is not a JSON object")
            if jwk.get("use", "sig") != "sig":
                continue
            kid = jwk.get("kid")
            if type(kid) is not str or not kid:
                raise ValueError(f"key {number} has no kid: tokens choose their key by kid")
            if kid in keys:
                raise ValueError(f"the kid {kid!r} names two keys")
            keys[kid] = _prepared(jwk, f"key {kid!r}")
        if not keys:
            raise ValueError("no signing keys in it")
        return cls(keys)

    def __len__(self) -> int:
        """How many keys the set has."""
        return len(self._keys)

    def verify(self, token: str, header: dict[str, Any], policy: Policy) -> dict[str, Any]:
        """The claims of ``token``, whose decoded header is ``header``, once all is checked.

        The signature must be made by the key that ``kid`` names, with an algorithm that
        fits it; ``exp`` and ``sub`` must be there; ``exp`` and ``nbf`` must hold within
        the leeway, and ``iss`` and ``aud`` must be among the policy's when it names some.

        Raises:
            InvalidToken: any of that fails; the detail says which, and quotes nothing.
        """
        alg = header.get("alg")
        if type(alg) is not str or alg.lower() == "none":
            raise InvalidToken("the token is not signed (alg none)")
        if alg not in ALGORITHMS:
            raise InvalidToken("the token's algorithm (alg) is not accepted")
        kid = header.get("kid")
        if type(kid) is not str:
            raise InvalidToken("the token names no key (kid)")
        fitting = self._keys.get(kid)
        if fitting is None:
            raise InvalidToken("the token's key (kid) is not in the key set")
        key = fitting.get(alg)
        if key is None:
            raise InvalidToken("the token's algorithm (alg) does not fit its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=list(policy.audiences) or None,
                issuer=list(policy.issuers) or None,
                leeway=policy.leeway,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": bool(policy.audiences),
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ImmatureSignatureError as early:
            claim = "iat" if "(iat)" in str(early) else "nbf"  # PyJWT's own fixed words
            raise InvalidToken(f"the token is not valid yet ({claim})", lasting=False) from None
        except jwt.MissingRequiredClaimError as missing:
            raise InvalidToken(f"the token has no {missing.claim} claim") from None
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _REASONS if isinstance(error, kind)), None)
            raise InvalidToken(reason or "the token cannot be decoded") from None
        return claims


def _prepared(jwk: dict[str, Any], name: str) -> dict[str, PyJWK]:
    """``jwk`` as a key for each algorithm it verifies; ``name`` names it in errors.

    Raises:
        ValueError: it is private, symmetric, of an unknown type or curve, too small, or
            names an algorithm that does not fit it.
    """
    if _PRIVATE & jwk.keys():
        raise ValueError(f"{name} holds a private key: a key set is for public keys")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "oct":
        raise ValueError(f"{name} is a symmetric (oct) key: tokens are verified with public keys")
    fitting = _FITTING.get((kty, None if kty == "RSA" else crv))
    if fitting is None:
        raise ValueError(
            f"{name} is not an RSA, EC P-256, EC P-384 or Ed25519/Ed448 key "
            f"(kty {kty!r}, crv {crv!r})"
        )
    alg = jwk.get("alg")
    if alg is not None:
        if alg not in fitting:
            raise ValueError(f"{name} names the algorithm {alg!r}, which does not fit it")
        fitting = (alg,)
    try:
        keys = {each: PyJWK(jwk, each) for each in fitting}
    except jwt.PyJWTError as error:
        raise ValueError(f"{name} cannot be loaded: {error}") from None
    if kty == "RSA" and keys[fitting[0]].key.key_size < MIN_RSA_BITS:
        raise ValueError(f"{name} is an RSA key of fewer than {MIN_RSA_BITS} bits")
    return keys
