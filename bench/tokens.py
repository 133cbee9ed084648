"""Tokens for the benchmarks and the tests: signing keys, their JWKS, and signed JWTs.

    python -m bench.tokens --out build/bench-jwt          # ES256 key: jwks.json, token
    python -m bench.tokens --out DIR --alg RS256 --ttl 3600 --sub alice

writes ``DIR/jwks.json`` (the public key, for ``--jwt-jwks``) and ``DIR/token`` (a token
signed by it, for ``Authorization: Bearer``), and prints the token's path. The private
key is never written: make a new one, and a new token, whenever you need them.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SigningKey", "claims", "key_set", "main"]

_EC_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, its ``kid`` and the algorithm it signs with."""

    kid: str
    alg: str
    private: Any

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> SigningKey:
        """A new key for ``alg`` (RS*, PS*, ES256/384/512 or EdDSA), named ``kid``."""
        if alg in _EC_CURVES:
            private: Any = ec.generate_private_key(_EC_CURVES[alg]())
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        elif alg[:2] in {"RS", "PS"}:
            private = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        else:
            raise ValueError(f"no key for {alg}")
        return cls(kid or f"{alg.lower()}-{int(time.time() * 1000)}", alg, private)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with its ``kid``, ``use`` and ``alg``."""
        public = self.private.public_key()
        if self.alg in _EC_CURVES:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        elif self.alg == "EdDSA":
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        """The public key in PEM (SubjectPublicKeyInfo), as a confused verifier might read it."""
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:  # noqa: ANN401 - JSON values
        """A compact JWT of ``claims``, its header naming this key (``header`` adds fields)."""
        return jwt.encode(claims, self.private, self.alg, headers={"kid": self.kid, **header})


def key_set(*keys: SigningKey) -> bytes:
    """A JWKS document of the public ``keys``."""
    return json.dumps({"keys": [key.jwk() for key in keys]}, indent=2).encode() + b"\n"


def claims(sub: str = "alice", ttl: float = 3600, **more: Any) -> dict[str, Any]:  # noqa: ANN401
    """Claims of a token for ``sub`` that is valid now and for ``ttl`` seconds."""
    now = int(time.time())
    return {"sub": sub, "iat": now, "nbf": now, "exp": now + int(ttl), **more}


def main() -> None:
    """Write a JWKS and a token signed by its key into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write into")
    parser.add_argument("--alg", default="ES256", help="RS256, PS256, ES256, EdDSA... (ES256)")
    parser.add_argument("--sub", default="bench", help="the token's sub (bench)")
    parser.add_argument("--ttl", type=float, default=86400, help="seconds it is valid (a day)")
    parser.add_argument("--iss", help="its iss, if any")
    parser.add_argument("--aud", help="its aud, if any")
    args = parser.parse_args()
    key = SigningKey.generate(args.alg)
    extra = {name: value for name in ("iss", "aud") if (value := getattr(args, name))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "jwks.json").write_bytes(key_set(key))
    (args.out / "token").write_text(key.sign(claims(args.sub, args.ttl, **extra)) + "\n")
    print(args.out / "token")


if __name__ == "__main__":
    main()
