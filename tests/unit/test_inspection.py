"""Inspection: header values as the report shows them, with credentials and cookies redacted."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from echod.http.inspection import redacted

CREDENTIALS = ["authorization", "proxy-authorization"]
#: Schemes other than Basic, whose whole token is a secret.
SCHEMES = ["Bearer", "bearer", "Digest", "Negotiate", "Token", "AWS4-HMAC-SHA256", "DPoP"]
#: A user name of Basic: any text without a colon (RFC 7617 section 2).
users = st.text(min_size=1, max_size=20).filter(lambda user: ":" not in user)
#: What a redacted Basic value shows whatever the credentials are.
SHOWN_ANYWAY = "Basic :<redacted>"
#: A secret worth looking for: at least four characters, so it is not found by chance.
secrets = st.text(min_size=4, max_size=40)


def basic(user: str, password: str, scheme: str = "Basic") -> str:
    """An ``Authorization`` value of the Basic scheme."""
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestBasic:
    @pytest.mark.parametrize("name", CREDENTIALS)
    def test_basic_keeps_the_user(self, name: str) -> None:
        """Basic alice:wonderland is shown as Basic alice:<redacted>."""
        assert redacted(name, basic("alice", "wonderland")) == "Basic alice:<redacted>"

    def test_a_colon_in_the_password_stays_in_the_password(self) -> None:
        """The user ends at the first colon; the rest is all password."""
        assert redacted("authorization", basic("alice", "won:der:land")) == (
            "Basic alice:<redacted>"
        )

    def test_an_empty_password(self) -> None:
        """alice: (no password) still shows only the user."""
        assert redacted("authorization", basic("alice", "")) == "Basic alice:<redacted>"

    def test_a_utf8_user_is_shown_decoded(self) -> None:
        """RFC 7617 charset UTF-8: the user is shown as text."""
        assert redacted("authorization", basic("zoë", "secret")) == "Basic zoë:<redacted>"

    def test_the_scheme_is_kept_as_sent(self) -> None:
        """Scheme names are case-insensitive; the one sent is shown."""
        assert redacted("authorization", basic("alice", "pw", "basic")) == (
            "basic alice:<redacted>"
        )
        assert redacted("authorization", basic("alice", "pw", "BASIC")) == (
            "BASIC alice:<redacted>"
        )

    def test_spaces_around_the_value_and_token_are_ignored(self) -> None:
        """Leading and trailing spaces do not change what is shown."""
        token = base64.b64encode(b"alice:wonderland").decode()
        assert redacted("authorization", f"  Basic   {token}  ") == "Basic alice:<redacted>"

    @pytest.mark.parametrize(
        "token",
        ["!!!not-base64!!!", "YWxpY2U6c2VjcmV0!", "YWxpY2U6c2VjcmV", "c2VjcmV0 c2VjcmV0", "%%%"],
        ids=["symbols", "trailing-garbage", "bad-padding", "inner-space", "percent"],
    )
    @pytest.mark.parametrize("name", CREDENTIALS)
    def test_invalid_base64_is_redacted_whole(self, name: str, token: str) -> None:
        """A token that is not base64 shows no part of itself."""
        assert redacted(name, f"Basic {token}") == "Basic <redacted>"

    def test_a_user_that_is_not_utf8_is_redacted_whole(self) -> None:
        """A user name that cannot be decoded is not shown at all."""
        token = base64.b64encode(b"\xff\xfe:secret").decode()
        assert redacted("authorization", f"Basic {token}") == "Basic <redacted>"

    @given(users, st.text(max_size=40))
    @settings(max_examples=300, deadline=None, database=None)
    def test_any_basic_credentials_show_only_their_user(self, user: str, password: str) -> None:
        """Whatever the user and password, the value shown is the user and <redacted>."""
        for name in CREDENTIALS:
            assert redacted(name, basic(user, password)) == f"Basic {user}:<redacted>"

    @given(users, secrets)
    @settings(max_examples=300, deadline=None, database=None)
    def test_the_password_never_appears(self, user: str, password: str) -> None:
        """Neither the password nor its base64 is ever in the value shown."""
        assume(password not in user and password not in SHOWN_ANYWAY)
        value = basic(user, password)
        token = value.removeprefix("Basic ")
        for name in CREDENTIALS:
            shown = redacted(name, value)
            assert password not in shown
            assert token not in shown


class TestOtherSchemes:
    @pytest.mark.parametrize("name", CREDENTIALS)
    def test_bearer_is_redacted(self, name: str) -> None:
        """A bearer token is hidden whole; the scheme stays."""
        assert redacted(name, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc") == "Bearer <redacted>"

    def test_parameters_of_a_scheme_are_redacted(self) -> None:
        """Digest's parameters, spaces and all, are part of the secret."""
        value = 'Digest username="alice", realm="echod", response="6629fae49393a053"'
        assert redacted("authorization", value) == "Digest <redacted>"

    @pytest.mark.parametrize("name", CREDENTIALS)
    def test_a_bare_token_without_a_scheme_is_redacted(self, name: str) -> None:
        """A value of a token alone, with no scheme, shows nothing of the token."""
        assert redacted(name, "sk_live_51HxQ2eJ4x9secret") == "<redacted>"

    def test_a_token_after_a_tab_is_not_shown(self) -> None:
        """A scheme and token separated by a tab (not a space) still hide the token."""
        assert "s3cr3t-token" not in redacted("authorization", "Bearer\ts3cr3t-token")

    def test_an_empty_value_is_redacted(self) -> None:
        """Nothing sent: nothing to show but the marker."""
        assert redacted("authorization", "") == "<redacted>"
        assert redacted("authorization", "   ") == "<redacted>"

    @given(st.sampled_from(SCHEMES), secrets)
    @settings(max_examples=300, deadline=None, database=None)
    def test_any_token_of_another_scheme_is_hidden(self, scheme: str, secret: str) -> None:
        """The value shown is the scheme and <redacted>, whatever the token holds."""
        assume(secret.strip())
        for name in CREDENTIALS:
            shown = redacted(name, f"{scheme} {secret}")
            assert shown == f"{scheme} <redacted>"


class TestCookiesAndOtherHeaders:
    @pytest.mark.parametrize(
        "value", ["session=abc123", "a=1; b=2", "", "Basic YWxpY2U6d29uZGVybGFuZA=="]
    )
    def test_cookies_are_redacted_whole(self, value: str) -> None:
        """A Cookie header is shown as <redacted>, names included."""
        assert redacted("cookie", value) == "<redacted>"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("user-agent", "curl/8.5.0"),
            ("accept", "application/json"),
            ("content-type", "application/json; charset=utf-8"),
            ("x-request-id", "abc-1"),
            ("x-forwarded-for", "192.0.2.1, 198.51.100.2"),
            ("www-authenticate", 'Basic realm="echod"'),
            ("x-echod-status", "503"),
            ("host", "echod.example"),
            ("x-custom", ""),
        ],
    )
    def test_other_headers_are_shown_as_sent(self, name: str, value: str) -> None:
        """Headers that carry no credentials are not touched, spaces and all."""
        assert redacted(name, value) == value

    @given(st.text(max_size=60))
    @settings(max_examples=200, deadline=None, database=None)
    def test_any_cookie_is_hidden(self, value: str) -> None:
        """Whatever a cookie holds, only the marker is shown."""
        assert redacted("cookie", value) == "<redacted>"
