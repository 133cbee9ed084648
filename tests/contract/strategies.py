"""Hypothesis strategies: JSON whose numbers are spelled exactly, and hostile header values."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from tests.support.patterns import SAFE_REQUEST_ID


class Number(str):
    """A JSON number as its text, so that a decimal is sent exactly as it is spelled."""

    __slots__ = ()


# Integers of up to 400 digits, and decimals with fractions and exponents of any case and sign.
_INTEGER = r"-?(0|[1-9][0-9]{0,399})"
_DECIMAL = r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?"

numbers = st.one_of(
    st.integers().map(str).map(Number),
    st.from_regex(_INTEGER, fullmatch=True).map(Number),
    st.from_regex(_DECIMAL, fullmatch=True).map(Number),
)
# Any text JSON can carry: every code point but lone surrogates, which UTF-8 cannot encode.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(texts, inner, max_size=5),
    ),
    max_leaves=30,
)
#: JSON objects without "echoed" at the top; nested ones may have it.
objects = st.dictionaries(texts.filter(lambda key: key != "echoed"), values, max_size=8)


def to_json(value: Any, *, ascii_only: bool = False) -> str:
    """Spell ``value`` as JSON text; a :class:`Number` is written as it is."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        members = (
            f"{json.dumps(key, ensure_ascii=ascii_only)}:{to_json(item, ascii_only=ascii_only)}"
            for key, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(item, ascii_only=ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def exact(text: str | bytes) -> Any:
    """Parse JSON keeping what equality would blur: key order, int or decimal, and digits.

    Objects become lists of pairs, numbers become ``("int", value)`` or ``("decimal",
    sign, digits, exponent)``, and ``true`` stays apart from ``1``.
    """

    def decimal(spelled: str) -> tuple[Any, ...]:
        return ("decimal", *Decimal(spelled).as_tuple())

    def tag(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return ("literal", value)
        if isinstance(value, int):
            return ("int", value)
        if isinstance(value, list):
            return [tag(item) for item in value]
        return value

    return json.loads(
        text,
        object_pairs_hook=lambda pairs: [(key, tag(item)) for key, item in pairs],
        parse_float=decimal,
        parse_int=lambda spelled: ("int", int(spelled)),
        parse_constant=_not_json,
    )


def _not_json(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


# Header values: mostly what HTTP allows (visible ASCII, spaces and obs-text bytes), mixed
# with any byte and with the sequences that would split a header, a line or a log line.
_HOSTILE = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\nx-injected: 1",
    b"\x00",
    b"\x1b[31m",
    b"\x7f",
    b'"}\n{"a":"',
    b"\t",
]
_VISIBLE = st.binary(min_size=1, max_size=12).map(
    lambda raw: bytes(0x20 + byte % 0x5F if byte < 0x80 else byte for byte in raw)
)
header_bytes = st.lists(
    st.one_of(
        _VISIBLE,
        _VISIBLE,
        st.from_regex(SAFE_REQUEST_ID.pattern.encode(), fullmatch=True),
        st.binary(min_size=1, max_size=4),
        st.sampled_from(_HOSTILE),
    ),
    max_size=4,
).map(b"".join)
#: Header values as the app sees them: any text, with the hostile characters mixed in.
header_texts = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from([value.decode("latin-1") for value in _HOSTILE]),
        st.from_regex(SAFE_REQUEST_ID, fullmatch=True),
    ),
    max_size=6,
).map("".join)
