"""The builtin tools, called through the ``builtin`` source as a run calls them.

``http_request`` is exercised against a real HTTP server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cairn.tools.base import ToolContext, ToolOutput
from cairn.tools.builtin import BuiltinSource, builtin_source_record

BIG_BODY = b"0123456789" * 500  # 5000 bytes


class Handler(BaseHTTPRequestHandler):
    """``/hello``, ``/big`` (5000 bytes), ``/echo`` (POST: method, header, body back),
    ``/redirect`` (to a host that is not allowed)."""

    def do_GET(self) -> None:
        if self.path == "/hello":
            self._reply(200, b"hello from loopback", "text/plain; charset=utf-8")
        elif self.path == "/big":
            self._reply(200, BIG_BODY, "application/octet-stream")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://not-allowed.invalid/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, b"no such page", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        token = self.headers.get("X-Token", "")
        self._reply(201, b"POST " + token.encode() + b" " + body, "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    """A real HTTP server on loopback, shared by this module's tests (it keeps no state)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def builtin(**context: Any) -> BuiltinSource:
    return BuiltinSource(builtin_source_record("default"), ToolContext(**context))


async def call(name: str, arguments: dict[str, Any], **context: Any) -> ToolOutput:
    return await builtin(**context).call_tool(name, arguments)


LOOPBACK = {"http_allowed_hosts": ("127.0.0.1",), "http_timeout_s": 5.0}


@pytest.mark.anyio
async def test_the_builtin_source_lists_its_four_tools_with_schemas() -> None:
    specs = await builtin().list_tools()
    assert [s.name for s in specs] == ["clock_now", "http_request", "json_extract", "regex_find"]
    assert all(s.description and s.input_schema.get("type") == "object" for s in specs)


@pytest.mark.anyio
async def test_an_unknown_builtin_name_is_an_error_result() -> None:
    output = await call("teleport", {})
    assert output.error == "unknown builtin tool 'teleport'"


# --- clock_now ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_clock_now_answers_in_the_requested_time_zone() -> None:
    output = await call("clock_now", {"timezone": "Asia/Tokyo"})
    assert output.error is None
    moment = datetime.fromisoformat(output.result)
    assert moment.utcoffset() == timedelta(hours=9)
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.anyio
async def test_clock_now_defaults_to_utc() -> None:
    output = await call("clock_now", {})
    assert datetime.fromisoformat(output.result).utcoffset() == timedelta(0)


@pytest.mark.anyio
@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd"])
async def test_clock_now_with_an_unknown_time_zone_is_an_error_naming_it(zone: str) -> None:
    output = await call("clock_now", {"timezone": zone})
    assert output.result is None
    assert output.error == f"unknown time zone {zone!r}"


# --- json_extract ---------------------------------------------------------------------------

ITEMS = [{"title": "lamp"}, {"title": "desk"}]
ORDER = {"order": {"id": 7, "items": ITEMS}}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("order.id", 7),
        ("order.items.0.title", "lamp"),
        ("order.items.-1.title", "desk"),
        ("order.items", ITEMS),
        ("", ORDER),
    ],
)
async def test_json_extract_follows_dotted_paths(path: str, expected: Any) -> None:
    output = await call("json_extract", {"document": ORDER, "path": path})
    assert output.error is None
    assert output.result == expected


@pytest.mark.anyio
async def test_json_extract_parses_a_document_given_as_a_json_string() -> None:
    output = await call("json_extract", {"document": '{"a": [10, 20]}', "path": "a.1"})
    assert output.result == 20


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (ORDER, "order.items.5", "index 5 is out of range at '5' in 'order.items.5'"),
        (ORDER, "order.customer", "path 'order.customer' has no 'customer'"),
        (ORDER, "order.id.value", "path 'order.id.value' has no 'value'"),
        (ORDER, "order.items.first", "path 'order.items.first' has no 'first'"),
        ("{not json", "a", "document is not valid JSON"),
    ],
)
async def test_json_extract_errors_say_where_the_path_broke(
    document: Any, path: str, message: str
) -> None:
    output = await call("json_extract", {"document": document, "path": path})
    assert output.result is None
    assert output.error is not None and output.error.startswith(message)


# --- regex_find -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_regex_find_returns_every_whole_match() -> None:
    output = await call("regex_find", {"text": "orders 12, 345 and 6789", "pattern": r"(\d)(\d+)"})
    assert output.result == ["12", "345", "6789"]


@pytest.mark.anyio
async def test_regex_find_stops_at_max_matches() -> None:
    output = await call("regex_find", {"text": "a1 b2 c3 d4", "pattern": r"\d", "max_matches": 2})
    assert output.result == ["1", "2"]


@pytest.mark.anyio
async def test_regex_find_with_an_invalid_pattern_is_an_error() -> None:
    output = await call("regex_find", {"text": "x", "pattern": "(unclosed"})
    assert output.error is not None and output.error.startswith("invalid pattern:")


@pytest.mark.anyio
async def test_a_non_integer_max_matches_comes_back_as_an_argument_error() -> None:
    output = await call("regex_find", {"text": "a1", "pattern": r"\d", "max_matches": "ten"})
    assert output.result is None
    assert output.error is not None and "max_matches" in output.error


# --- http_request -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_request_refuses_a_host_outside_the_allowlist() -> None:
    output = await call("http_request", {"url": "http://example.com/"}, **LOOPBACK)
    assert output.result is None
    assert output.error is not None
    assert "'example.com' is not allowed" in output.error
    assert "127.0.0.1" in output.error and "CAIRN_HTTP_ALLOWED_HOSTS" in output.error


@pytest.mark.anyio
async def test_http_request_allows_nothing_by_default(http_base: str) -> None:
    output = await call("http_request", {"url": f"{http_base}/hello"})
    assert output.error is not None
    assert "allowed hosts: none" in output.error


@pytest.mark.anyio
async def test_a_lookalike_host_is_not_the_allowed_one() -> None:
    output = await call("http_request", {"url": "http://127.0.0.1.nip.io/"}, **LOOPBACK)
    assert output.error is not None and "not allowed" in output.error


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "127.0.0.1"])
async def test_http_request_refuses_what_is_not_an_http_url(url: str) -> None:
    output = await call("http_request", {"url": url}, **LOOPBACK)
    assert output.error == f"not an http(s) URL: {url!r}"


@pytest.mark.anyio
async def test_http_request_reaches_an_allowed_host(http_base: str) -> None:
    output = await call("http_request", {"url": f"{http_base}/hello"}, **LOOPBACK)
    assert output.error is None
    assert output.result == {
        "status": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": "hello from loopback",
        "truncated": False,
    }


@pytest.mark.anyio
async def test_http_request_sends_method_headers_and_body(http_base: str) -> None:
    output = await call(
        "http_request",
        {"url": f"{http_base}/echo", "method": "post", "headers": {"X-Token": "t1"}, "body": "hi"},
        **LOOPBACK,
    )
    assert output.error is None
    assert output.result["status"] == 201
    assert output.result["body"] == "POST t1 hi"


@pytest.mark.anyio
async def test_http_request_truncates_a_large_body_and_says_so(http_base: str) -> None:
    output = await call(
        "http_request", {"url": f"{http_base}/big"}, **LOOPBACK, http_max_response_bytes=1000
    )
    assert output.error is None
    assert output.result["truncated"] is True
    assert output.result["body"] == BIG_BODY[:1000].decode()


@pytest.mark.anyio
async def test_http_request_does_not_follow_a_redirect_off_the_allowlist(http_base: str) -> None:
    output = await call("http_request", {"url": f"{http_base}/redirect"}, **LOOPBACK)
    assert output.error is None
    assert output.result["status"] == 302


@pytest.mark.anyio
async def test_http_request_to_a_closed_port_is_an_error_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = await call("http_request", {"url": f"http://127.0.0.1:{port}/"}, **LOOPBACK)
    assert output.result is None
    assert output.error is not None and output.error.startswith(f"GET http://127.0.0.1:{port}/")


@pytest.mark.anyio
async def test_http_request_headers_that_are_not_an_object_are_an_argument_error(
    http_base: str,
) -> None:
    output = await call(
        "http_request", {"url": f"{http_base}/hello", "headers": ["X-Token: t1"]}, **LOOPBACK
    )
    assert output.result is None
    assert output.error is not None and "headers" in output.error
