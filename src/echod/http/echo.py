"""Echo: turn a request body into the response body, or say exactly why not.

The body must be one JSON object. It comes back with ``"echoed": true``: the client's
keys keep their order and their values come back exactly. Integers of any size stay
integers, and every other number is kept as a decimal, so ``1.10``, ``1e400`` and
``-0.0`` are not rounded through a binary float. A key that appears twice keeps the
position of its first occurrence and the value of its last (as most JSON parsers do).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from echod.http.problems import BadRequest

__all__ = ["MAX_DEPTH", "echo", "too_deep"]

#: Deepest nesting of objects and arrays accepted, counting the outer object as 1.
MAX_DEPTH = 128

_CONTAINERS = (dict, list)
_JSON_KIND = {
    list: "an array",
    str: "a string",
    int: "a number",
    Decimal: "a number",
    msgspec.Raw: "a number",
}


def _decimal(text: str) -> Decimal | msgspec.Raw:
    value = Decimal(text)
    # str() spells a decimal whose exponent is 0 as an integer, so 1.5e1 and 0e0 would
    # come back as the integers 15 and 0. Only a number with an exponent can land there
    # (one without has a point, so a negative exponent); it keeps an explicit E0.
    if ("e" in text or "E" in text) and value.as_tuple().exponent == 0:
        return msgspec.Raw(f"{value}E0".encode())
    return value


_decode = msgspec.json.Decoder(float_hook=_decimal).decode
_encode = msgspec.json.Encoder(decimal_format="number").encode


def echo(body: bytes) -> bytes:
    """Return ``body``, a JSON object, with ``"echoed": true`` set.

    Raises:
        BadRequest: the body is empty, is not valid UTF-8 JSON, is not an object, nests
            deeper than :data:`MAX_DEPTH`, or is already echoed (``"echoed"`` is
            ``true`` or ``"true"``). Any other value of ``"echoed"`` is replaced.
    """
    try:
        value = _decode(body)
    except msgspec.DecodeError as error:
        if not body.strip():
            raise BadRequest("the request body is empty; send a JSON object") from None
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    if type(value) is not dict:
        kind = "null" if value is None else _JSON_KIND.get(type(value), "a boolean")
        raise BadRequest(f"the body must be a JSON object, not {kind}")
    # Counting brackets is fast and bounds the depth from above, so the walk over the
    # decoded value only runs for bodies that could be too deep.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and too_deep(value):
        raise BadRequest(f"the JSON nests deeper than {MAX_DEPTH} levels")
    echoed = value.get("echoed")
    if echoed is True or echoed == "true":
        raise BadRequest('the object is already echoed: "echoed" is true')
    value["echoed"] = True
    return _encode(value)


def too_deep(value: dict[str, Any]) -> bool:
    """Whether ``value`` nests objects and arrays deeper than :data:`MAX_DEPTH` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in _CONTAINERS)
    return False
