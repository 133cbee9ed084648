"""Echo: the body in, the echoed body out, or a 400 that says why."""

from __future__ import annotations

import json

import pytest

from echod.http.echo import MAX_DEPTH, echo
from echod.http.problems import BadRequest


def nested(depth: int, *, flat: int = 0) -> bytes:
    """An object ``depth`` levels deep (3 or more), beside an array of ``flat`` empty arrays.

    The flat arrays add brackets but no depth, so the body holds more brackets than levels.
    """
    chain = b'{"a":' * (depth - 2) + b"[]" + b"}" * (depth - 2)
    return b'{"flat": [' + b",".join([b"[]"] * flat) + b'], "deep": ' + chain + b"}"


class TestEcho:
    def test_object_comes_back_with_echoed_true(self) -> None:
        """The seed's example."""
        assert echo(b'{"foo": "bar"}') == b'{"foo":"bar","echoed":true}'

    def test_key_order_is_kept(self) -> None:
        """Keys come back in the client's order, echoed last."""
        out = echo(b'{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}')
        assert out == b'{"z":1,"a":2,"m":{"y":1,"b":2},"echoed":true}'

    @pytest.mark.parametrize(
        ("number", "expected"),
        [
            ("123456789012345678901234567890", "123456789012345678901234567890"),
            ("-9" * 1 + "9" * 399, "-" + "9" * 400),
            ("1.10", "1.10"),
            ("0.1", "0.1"),
            ("-0.0", "-0.0"),
            ("1e400", "1E+400"),
            ("5e-324", "5E-324"),
            ("3.141592653589793238462643383279", "3.141592653589793238462643383279"),
            ("9007199254740993", "9007199254740993"),
            ("1.5e1", "15E0"),
            ("-0E0", "-0E0"),
        ],
        ids=[
            "big-int",
            "400-digits",
            "trailing-zero",
            "tenth",
            "negative-zero",
            "huge",
            "tiny",
            "long-pi",
            "beyond-double",
            "exponent-to-whole",
            "negative-zero-exponent",
        ],
    )
    def test_numbers_come_back_exactly(self, number: str, expected: str) -> None:
        """No number is rounded through a binary float."""
        out = echo(b'{"n": ' + number.encode() + b"}")
        assert out == b'{"n":' + expected.encode() + b',"echoed":true}'

    @pytest.mark.parametrize("number", ["1e0", "0e0", "1.5e1", "12.34E2", "-7E+0"])
    def test_a_decimal_never_comes_back_as_an_integer(self, number: str) -> None:
        """A number with an exponent stays a decimal even when its value is whole."""
        out = json.loads(echo(b'{"n": ' + number.encode() + b"}"))
        assert type(out["n"]) is float
        assert out["n"] == float(number)

    def test_unicode_and_escapes_survive(self) -> None:
        """Strings come back equal, whatever their characters."""
        body = '{"s": "h\\u00e9llo \\ud83d\\ude00 \\"q\\" \\\\ \\n \\u0000 日本"}'.encode()
        assert json.loads(echo(body)) == {"s": 'héllo 😀 "q" \\ \n \x00 日本', "echoed": True}

    def test_duplicate_key_keeps_first_place_and_last_value(self) -> None:
        """Documented: the last value wins, at the first key's position."""
        assert echo(b'{"a": 1, "b": 2, "a": 3}') == b'{"a":3,"b":2,"echoed":true}'

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("false", "true"), ('"yes"', "true"), ("null", "true"), ("1", "true"), ('"True"', "true")],
        ids=["false", "string-yes", "null", "one", "string-True"],
    )
    def test_other_echoed_values_are_replaced_in_place(self, value: str, expected: str) -> None:
        """An "echoed" that is not true or "true" is overwritten where it stands."""
        out = echo(b'{"echoed": ' + value.encode() + b', "a": 1}')
        assert out == b'{"echoed":' + expected.encode() + b',"a":1}'

    def test_whitespace_around_the_object_is_fine(self) -> None:
        """JSON allows surrounding whitespace."""
        assert echo(b' \n{"a":1}\t ') == b'{"a":1,"echoed":true}'

    def test_nesting_up_to_the_limit_is_accepted(self) -> None:
        """MAX_DEPTH levels, the outer object included, pass."""
        body = b'{"a":' * (MAX_DEPTH - 1) + b"[]" + b"}" * (MAX_DEPTH - 1)
        assert echo(body).endswith(b',"echoed":true}')

    def test_nesting_up_to_the_limit_is_accepted_among_many_brackets(self) -> None:
        """MAX_DEPTH levels pass when the body has more brackets than that, the walk counting."""
        body = nested(MAX_DEPTH, flat=MAX_DEPTH)
        assert body.count(b"[") + body.count(b"{") > MAX_DEPTH
        assert json.loads(echo(body)) == {**json.loads(body), "echoed": True}

    def test_many_flat_containers_are_not_too_deep(self) -> None:
        """The bracket count alone never refuses a body."""
        body = b'{"l": [' + b",".join([b"{}"] * (MAX_DEPTH * 3)) + b"]}"
        assert echo(body).endswith(b',"echoed":true}')

    def test_brackets_inside_strings_do_not_count(self) -> None:
        """Only real nesting counts."""
        body = b'{"s": "' + b"[" * (MAX_DEPTH * 2) + b'"}'
        assert echo(body).startswith(b'{"s":"[[')


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (b"", "the request body is empty"),
            (b"  \n", "the request body is empty"),
            (b"{", "not valid JSON: Input data was truncated"),
            (b"{'a': 1}", "not valid JSON: JSON is malformed"),
            (b'{"a": 1} x', "not valid JSON: JSON is malformed: trailing characters"),
            (b'{"a": "\xff"}', "not valid JSON: Invalid UTF-8"),
            (b'{"a": "\xed\xa0\x80"}', "not valid JSON: Invalid UTF-8"),
            (b'{"a": "\\ud800"}', "not valid JSON"),
            (b'{"a": "x\x00y"}', "not valid JSON: JSON is malformed"),
            (b'{"a": NaN}', "not valid JSON"),
            (b'{"a": Infinity}', "not valid JSON"),
            (b'{"a": -Infinity}', "not valid JSON"),
            (b"\xef\xbb\xbf{}", "not valid JSON"),
            (b'{"a": 01}', "not valid JSON"),
            (b"[1, 2]", "must be a JSON object, not an array"),
            (b'"text"', "must be a JSON object, not a string"),
            (b"42", "must be a JSON object, not a number"),
            (b"4.2", "must be a JSON object, not a number"),
            (b"4.2e1", "must be a JSON object, not a number"),
            (b"true", "must be a JSON object, not a boolean"),
            (b"null", "must be a JSON object, not null"),
            (b'{"echoed": true}', '"echoed" is true'),
            (b'{"a": 1, "echoed": "true"}', '"echoed" is true'),
        ],
        ids=[
            "empty",
            "whitespace",
            "truncated",
            "single-quotes",
            "trailing",
            "invalid-utf8",
            "encoded-surrogate",
            "lone-surrogate-escape",
            "raw-nul",
            "nan",
            "infinity",
            "minus-infinity",
            "bom",
            "leading-zero",
            "array",
            "string",
            "int",
            "float",
            "whole-decimal",
            "bool",
            "null",
            "echoed-true",
            "echoed-string-true",
        ],
    )
    def test_bad_bodies_are_refused_with_a_reason(self, body: bytes, detail: str) -> None:
        """Each refusal is a 400 whose detail says what is wrong."""
        with pytest.raises(BadRequest) as caught:
            echo(body)
        assert caught.value.status == 400
        assert detail in caught.value.detail

    @pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 10_000], ids=str)
    def test_nesting_beyond_the_limit_is_refused(self, depth: int) -> None:
        """Deep nesting is a 400 naming the limit, never a crash."""
        body = b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        with pytest.raises(BadRequest, match=f"deeper than {MAX_DEPTH} levels"):
            echo(body)

    def test_one_level_over_the_limit_is_refused_among_many_brackets(self) -> None:
        """MAX_DEPTH + 1 levels are refused however many flat brackets stand beside them."""
        with pytest.raises(BadRequest, match=f"deeper than {MAX_DEPTH} levels"):
            echo(nested(MAX_DEPTH + 1, flat=MAX_DEPTH))

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (b"", "the request body is empty; send a JSON object"),
            (b" \t\r\n", "the request body is empty; send a JSON object"),
            (b"[]", "the body must be a JSON object, not an array"),
            (b'"{}"', "the body must be a JSON object, not a string"),
            (b"1.5", "the body must be a JSON object, not a number"),
            (b"false", "the body must be a JSON object, not a boolean"),
            (b"null", "the body must be a JSON object, not null"),
            (b'{"echoed": true}', 'the object is already echoed: "echoed" is true'),
            (b'{"echoed": "true"}', 'the object is already echoed: "echoed" is true'),
            (
                nested(MAX_DEPTH + 1, flat=MAX_DEPTH),
                f"the JSON nests deeper than {MAX_DEPTH} levels",
            ),
            (nested(10_000), f"the JSON nests deeper than {MAX_DEPTH} levels"),
        ],
        ids=[
            "empty",
            "whitespace",
            "array",
            "string",
            "number",
            "boolean",
            "null",
            "echoed-true",
            "echoed-string-true",
            "too-deep",
            "too-deep-for-the-parser",
        ],
    )
    def test_the_detail_is_the_whole_sentence(self, body: bytes, detail: str) -> None:
        """The 400's detail is exactly the sentence a client reads, nothing added or changed."""
        with pytest.raises(BadRequest) as caught:
            echo(body)
        assert caught.value.detail == detail
