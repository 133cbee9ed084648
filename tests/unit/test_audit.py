"""echod audit without a proxy: its verdicts, its report, its target and its command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from echod.audit import EXIT_UNUSABLE, main
from echod.audit import judge as verdicts
from echod.audit.checks import CHECKS, RELOAD_CHECKS
from echod.audit.report import FAIL, PASS, SKIP, WARN, Check, Report, render
from echod.audit.wire import Answer, Target, request


def forwarded(**given: list[object]) -> dict[str, list[object]]:
    """An ``/api/inspect`` report's ``forwarded``, empty but for ``given``."""
    empty: dict[str, list[object]] = {
        "forwarded": [],
        "xForwardedFor": [],
        "xForwardedProto": [],
        "xForwardedHost": [],
        "xForwardedPort": [],
        "xRealIp": [],
    }
    return {**empty, **given}


FORGED_ELEMENT = {"for": "198.51.100.66", "proto": "gopher", "host": "forged.example"}


class TestForgedHeaders:
    def test_every_header_passed_on_unchanged_fails(self) -> None:
        """A proxy that touches nothing passes every forged header on."""
        arrived = forwarded(
            forwarded=[FORGED_ELEMENT],
            xForwardedFor=["198.51.100.66"],
            xForwardedProto=["gopher"],
            xForwardedHost=["forged.example"],
            xRealIp=["198.51.100.66"],
        )
        result, detail, _ = verdicts.forged_headers(arrived)
        assert result == FAIL
        assert detail == (
            "passed on unchanged: Forwarded, X-Forwarded-For, X-Forwarded-Proto, "
            "X-Forwarded-Host, X-Real-IP"
        )

    def test_replaced_appended_or_removed_passes(self) -> None:
        """The proxy's own values, or the forged one followed by the proxy's, or nothing."""
        arrived = forwarded(
            forwarded=[FORGED_ELEMENT, {"for": "127.0.0.1"}],
            xForwardedFor=["198.51.100.66", "127.0.0.1"],
            xForwardedProto=["https"],
        )
        result, _, notes = verdicts.forged_headers(arrived)
        assert result == PASS
        assert notes == [
            "Forwarded: the proxy's value appended after the forged one",
            "X-Forwarded-For: the proxy's value appended after the forged one",
            "X-Forwarded-Proto: replaced",
            "X-Forwarded-Host: removed",
            "X-Real-IP: removed",
        ]

    def test_one_unchanged_is_enough_to_fail(self) -> None:
        """Caddy by default replaces X-Forwarded-* but keeps Forwarded and X-Real-IP."""
        arrived = forwarded(
            forwarded=[FORGED_ELEMENT],
            xForwardedFor=["127.0.0.1"],
            xForwardedProto=["https"],
            xForwardedHost=["localhost"],
            xRealIp=["198.51.100.66"],
        )
        assert verdicts.forged_headers(arrived)[:2] == (
            FAIL,
            "passed on unchanged: Forwarded, X-Real-IP",
        )


class TestHopByHop:
    @pytest.mark.parametrize(
        ("headers", "result"),
        [
            ([["host", "x"]], PASS),
            ([["te", "trailers"]], PASS),
            ([["keep-alive", "timeout=5"]], FAIL),
            ([["proxy-connection", "keep-alive"]], FAIL),
            ([["te", "trailers, deflate"]], FAIL),
        ],
        ids=["none", "te-trailers", "keep-alive", "proxy-connection", "te-other"],
    )
    def test_named_ones_fail(self, headers: list[list[str]], result: str) -> None:
        """Keep-Alive, Proxy-Connection and a TE beyond trailers reaching echod fail."""
        clean = {"headers": [["host", "x"]]}
        assert verdicts.hop_by_hop({"headers": headers}, clean)[0] == result

    @pytest.mark.parametrize(
        ("listed", "refused", "result"),
        [
            ({"headers": [["host", "x"]]}, None, PASS),
            ({"headers": [["x-audit-hop", "1"]]}, None, WARN),
            ({"headers": [["connection", "X-Audit-Hop"]]}, None, WARN),
            (None, "400", PASS),
            (None, None, FAIL),
        ],
        ids=["removed", "passed-on", "connection-token-kept", "refused", "lost"],
    )
    def test_what_connection_names_is_removed_or_refused(
        self, listed: dict[str, list[list[str]]] | None, refused: str | None, result: str
    ) -> None:
        """A header Connection names: removed or refused passes, passed on warns, lost fails."""
        report = {"headers": [["host", "x"]]}
        assert verdicts.hop_by_hop(report, listed, refused=refused)[0] == result

    def test_a_named_one_fails_whatever_became_of_the_listed_one(self) -> None:
        """A Keep-Alive that reached echod fails even when the proxy refused the other."""
        report = {"headers": [["keep-alive", "1"]]}
        assert verdicts.hop_by_hop(report, None, refused="400")[0] == FAIL


class TestPathVariants:
    def test_a_variant_through_where_the_path_is_refused_fails(self) -> None:
        """The rule is bypassed."""
        result, detail = verdicts.path_variants(
            {"/%6detrics": True, "//metrics": False}, base_reached=False, slash_reached=False
        )
        assert (result, detail) == (FAIL, "the proxy refuses /metrics but passes on /%6detrics")

    def test_no_rule_at_all_warns(self) -> None:
        """/metrics reaches echod: nothing to bypass, but it should stay inside."""
        assert (
            verdicts.path_variants({"/%6detrics": True}, base_reached=True, slash_reached=True)[0]
            == WARN
        )

    def test_an_encoded_slash_that_reaches_echod_warns(self) -> None:
        """echod sees it as a slash."""
        assert (
            verdicts.path_variants({"/%6detrics": False}, base_reached=False, slash_reached=True)[0]
            == WARN
        )

    def test_all_refused_passes(self) -> None:
        """The shipped configurations."""
        assert (
            verdicts.path_variants({"/%6detrics": False}, base_reached=False, slash_reached=False)[
                0
            ]
            == PASS
        )


class TestConnectionReuse:
    def test_http_1_0_warns(self) -> None:
        """nginx's default: HTTP/1.0, a connection per request."""
        seen = [("1.0", f"127.0.0.1:{port}", "a") for port in range(4)]
        assert verdicts.connection_reuse(seen)[0] == WARN

    def test_a_new_connection_each_time_warns(self) -> None:
        """HTTP/1.1, but never the same source port twice for one instance."""
        seen = [("1.1", f"127.0.0.1:{port}", "a") for port in range(4)]
        assert verdicts.connection_reuse(seen) == (
            WARN,
            "HTTP/1.1 to echod, a new connection for every request",
        )

    def test_reuse_passes(self) -> None:
        """Two instances, each seeing one connection again."""
        seen = [("1.1", "127.0.0.1:1", "a"), ("1.1", "127.0.0.1:2", "b")] * 2
        assert verdicts.connection_reuse(seen) == (PASS, "HTTP/1.1 to echod, connections reused")

    def test_no_instance_twice_warns(self) -> None:
        """Reuse cannot be seen."""
        assert verdicts.connection_reuse([("1.1", "a", "1"), ("1.1", "b", "2")])[0] == WARN


class TestSsePace:
    def test_the_first_late_fails(self) -> None:
        """A buffering proxy holds the first event back."""
        assert verdicts.sse_pace([0.9, 0.9, 0.9], 0.4)[0] == FAIL

    def test_events_together_fail(self) -> None:
        """The first on time, the rest bunched."""
        assert verdicts.sse_pace([0.01, 0.81, 0.82], 0.4)[0] == FAIL

    def test_on_their_own_pass(self) -> None:
        """At once, then about the interval apart."""
        assert verdicts.sse_pace([0.01, 0.41, 0.81], 0.4) == (
            PASS,
            "each event on its own (10, 410, 810 ms)",
        )

    def test_none_fails(self) -> None:
        """Nothing arrived."""
        assert verdicts.sse_pace([], 0.4) == (FAIL, "no event arrived")


class TestAddresses:
    @pytest.mark.parametrize(
        ("item", "address"),
        [
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:5000", "127.0.0.1"),
            ('"[2001:db8::1]:4711"', "2001:db8::1"),
            ("[::1]", "::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" unknown ", "unknown"),
        ],
    )
    def test_ports_brackets_and_quotes_are_dropped(self, item: str, address: str) -> None:
        """As X-Forwarded-For and Forwarded's for= write addresses."""
        assert verdicts.address_of(item) == address


class TestReport:
    @pytest.fixture
    def report(self) -> Report:
        """Two checks, one passed and one failed."""
        return Report(
            "https://proxy.example",
            [
                Check(3, "host-preserved", "t", PASS, "Host ok", ["Host: a"], ["Host: a"]),
                Check(7, "sse-unbuffered", "t", FAIL, "buffered | held", ["GET"], []),
            ],
            ["id-1"],
        )

    def test_the_table_puts_the_evidence_under_each_check(self, report: Report) -> None:
        """One line per check, then what was sent and what arrived, then the counts."""
        assert render(report, "table").splitlines() == [
            "echod audit through https://proxy.example",
            "",
            " 3  host-preserved  PASS  Host ok",
            "                          sent     Host: a",
            "                          arrived  Host: a",
            " 7  sse-unbuffered  FAIL  buffered | held",
            "                          sent     GET",
            "",
            "2 checks: 1 pass, 0 warn, 1 fail, 0 skip",
        ]

    def test_json_holds_everything(self, report: Report) -> None:
        """Each check's fields, the counts and the verdict."""
        data = json.loads(render(report, "json"))
        assert data["failed"] is True
        assert data["counts"] == {"pass": 1, "warn": 0, "fail": 1, "skip": 0}
        assert data["checks"][1] == {
            "number": 7,
            "name": "sse-unbuffered",
            "title": "t",
            "result": FAIL,
            "detail": "buffered | held",
            "sent": ["GET"],
            "arrived": [],
        }

    def test_markdown_escapes_what_would_break_its_table(self, report: Report) -> None:
        """A | in a detail stays in its cell."""
        lines = render(report, "markdown").splitlines()
        assert lines[2] == "| # | check | result | detail | sent | arrived |"
        assert lines[5] == "| 7 | `sse-unbuffered` | **fail** | buffered \\| held | GET |  |"

    def test_a_skip_is_no_failure(self) -> None:
        """Only fail fails the run."""
        assert not Report("x", [Check(1, "a", "t", SKIP), Check(2, "b", "t", WARN)]).failed


class TestTarget:
    def test_an_https_url_with_a_port(self) -> None:
        """The authority is sent as Host, exactly as given."""
        target = Target.parse("https://Proxy.Example:8443")
        assert (target.host, target.port, target.authority) == (
            "proxy.example",
            8443,
            "Proxy.Example:8443",
        )
        assert target.origin == "https://Proxy.Example:8443"

    def test_default_ports(self) -> None:
        """443 for https, 80 for http."""
        assert Target.parse("https://a.example/").port == 443
        assert Target.parse("http://a.example").port == 80

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://a.example",
            "https://",
            "a.example",
            "https://a.example/api",
            "https://a.example:99999",
        ],
    )
    def test_anything_else_is_refused(self, url: str) -> None:
        """Another scheme, no host, a path, a bad port."""
        with pytest.raises(ValueError, match=r"URL|[Pp]ort|path"):
            Target.parse(url)


class TestWire:
    def test_a_request_has_host_first_and_its_length(self) -> None:
        """Headers as given, a Content-Length when there is a body and no framing."""
        assert request("POST", "/x", "a:1", [("X-A", "1")], b"{}") == (
            b"POST /x HTTP/1.1\r\nHost: a:1\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n{}"
        )

    def test_given_framing_is_left_alone(self) -> None:
        """A smuggling probe's two lengths are sent as they are."""
        raw = request(
            "POST", "/x", "a", [("Content-Length", "0"), ("Content-Length", "5")], b"hello"
        )
        assert raw.count(b"Content-Length") == 2

    def test_only_a_report_of_echod_is_one(self) -> None:
        """A proxy's JSON error page is not echod's report."""
        assert Answer(200, body=b'{"error": 1}').report() is None
        assert Answer(200, body=b"<html>").report() is None
        assert Answer(200, body=b'{"requestId": "a", "headers": []}').report() == {
            "requestId": "a",
            "headers": [],
        }


class TestCommandLine:
    def test_the_checks_are_numbered_in_order(self) -> None:
        """1 to 15, then the two of --include reload."""
        assert [entry.number for entry in (*CHECKS, *RELOAD_CHECKS)] == list(range(1, 18))

    @pytest.mark.parametrize(
        ("argv", "said"),
        [
            (["--through", "ftp://x"], "--through"),
            (["--through", "http://127.0.0.1:9", "--delay-ms", "0"], "--delay-ms must be above 0"),
            (
                ["--through", "http://127.0.0.1:9", "--user", "nocolon"],
                "--user must be USER:PASSWORD",
            ),
            (["--through", "http://127.0.0.1:9"], "cannot audit"),
        ],
        ids=["scheme", "delay", "user", "nothing-there"],
    )
    def test_what_cannot_be_audited_exits_2(
        self, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad option, or no echod answering through the URL, says why on stderr."""
        assert main([*argv, "--timeout", "1"]) == EXIT_UNUSABLE
        assert said in capsys.readouterr().err

    def test_an_unknown_option_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """argparse's own message."""
        assert main(["--through", "http://x", "--nope"]) == EXIT_UNUSABLE
        assert "unrecognized arguments: --nope" in capsys.readouterr().err

    def test_serving_never_loads_the_audits_clients(self) -> None:
        """The CLI, the serving process and the app import neither httpx, h2 nor websockets."""
        code = (
            "import sys, echod.cli, echod.instance.serving, echod.http.factory, echod.audit;"
            "print(sorted(m for m in ('httpx', 'h2', 'websockets') if m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"
