"""The ``user_mcp`` source against real MCP servers (``tests/mcp_servers``) over stdio and HTTP."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from cairn.domain.sources import DataSource
from cairn.tools.base import SourceUnavailable, ToolContext, ToolSource
from cairn.tools.kinds import source_kinds
from cairn.tools.mcp import HealthResult, McpSource, check_health
from tests.mcp_servers import ORDERS_TOOLS, HttpServer, serve_http, stdio_config

CONTEXT = ToolContext()
TOKEN = "tok-4f1d9c2ab7e3"
HEADER = "X-Orders-Key"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio, at module scope so the shared ``stdio_orders`` fixture can be async."""
    return "asyncio"


def make_source(config: dict[str, Any], secret: dict[str, str] | None = None) -> DataSource:
    return DataSource(
        source_id="src_orders",
        sandbox_id="sbx_test",
        kind="user_mcp",
        label="orders",
        config=config,
        secret=secret or {},
    )


async def open_failure(
    config: dict[str, Any], secret: dict[str, str] | None = None
) -> SourceUnavailable:
    """Enter a source that must not open; return the ``SourceUnavailable`` it raised."""
    with pytest.raises(SourceUnavailable) as caught:
        with anyio.fail_after(15):
            async with McpSource(make_source(config, secret), CONTEXT):
                pass
    return caught.value


@pytest.fixture(scope="module")
async def stdio_orders() -> AsyncIterator[McpSource]:
    """One stdio orders server shared by the module's read-only tests (spawning costs ~1 s)."""
    async with McpSource(make_source(stdio_config()), CONTEXT) as source:
        await source.list_tools()
        yield source


@pytest.fixture(scope="module")
def bearer_server() -> Iterator[HttpServer]:
    with serve_http(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def header_server() -> Iterator[HttpServer]:
    with serve_http(TOKEN, auth_header=HEADER) as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- stdio -------------------------------------------------------------------------------


def test_the_user_mcp_kind_is_built_by_mcp_source() -> None:
    assert source_kinds.get("user_mcp") is McpSource


def test_mcp_source_satisfies_the_tool_source_protocol() -> None:
    source = McpSource(make_source(stdio_config()), CONTEXT)

    assert isinstance(source, ToolSource)
    assert (source.kind, source.source_id, source.label) == ("user_mcp", "src_orders", "orders")


@pytest.mark.anyio
async def test_stdio_source_lists_the_servers_tools_under_their_raw_names(
    stdio_orders: McpSource,
) -> None:
    specs = await stdio_orders.list_tools()

    assert sorted(spec.name for spec in specs) == list(ORDERS_TOOLS)
    lookup = next(spec for spec in specs if spec.name == "lookup_order")
    assert lookup.description == "Say where an order is."
    assert lookup.input_schema["required"] == ["order_id"]


@pytest.mark.anyio
async def test_stdio_tool_call_returns_the_servers_answer(stdio_orders: McpSource) -> None:
    output = await stdio_orders.call_tool("lookup_order", {"order_id": "A-42"})

    assert output.error is None
    assert output.result == "order A-42: shipped"


@pytest.mark.anyio
async def test_plain_return_values_are_unwrapped_and_objects_stay_structured(
    stdio_orders: McpSource,
) -> None:
    total = await stdio_orders.call_tool("add", {"a": 2, "b": 3})
    summary = await stdio_orders.call_tool("order_summary", {"order_id": "A-42"})

    assert total.result == 5
    assert summary.result == {"order_id": "A-42", "status": "shipped", "items": 2}


@pytest.mark.anyio
async def test_a_tool_that_raises_comes_back_as_an_error_not_an_exception(
    stdio_orders: McpSource,
) -> None:
    output = await stdio_orders.call_tool("fail", {"message": "warehouse on fire"})

    assert output.result is None
    assert output.error is not None and "fail" in output.error


@pytest.mark.anyio
async def test_unknown_tools_and_bad_arguments_come_back_as_errors(
    stdio_orders: McpSource,
) -> None:
    unknown = await stdio_orders.call_tool("no_such_tool", {})
    bad = await stdio_orders.call_tool("add", {"a": "three"})

    assert unknown.error is not None and "no_such_tool" in unknown.error
    assert bad.error is not None and "add" in bad.error


@pytest.mark.anyio
async def test_a_cancelled_call_leaves_the_source_usable(stdio_orders: McpSource) -> None:
    with anyio.move_on_after(0.2) as scope:
        await stdio_orders.call_tool("slow", {"seconds": 30})

    assert scope.cancelled_caught
    output = await stdio_orders.call_tool("lookup_order", {"order_id": "B-7"})
    assert output.result == "order B-7: shipped"


@pytest.mark.anyio
async def test_a_source_opened_under_a_deadline_can_be_closed_after_the_deadline_scope() -> None:
    # How resolution holds a source: bound entering and listing, close much later.
    source = McpSource(make_source(stdio_config()), CONTEXT)
    with anyio.fail_after(15):
        await source.__aenter__()
        specs = await source.list_tools()
    output = await source.call_tool("lookup_order", {"order_id": "C-3"})
    await source.__aexit__(None, None, None)

    assert len(specs) == len(ORDERS_TOOLS)
    assert output.result == "order C-3: shipped"


@pytest.mark.anyio
async def test_a_server_that_dies_mid_run_fails_its_calls_without_cancelling_the_caller() -> None:
    with anyio.fail_after(10):
        async with McpSource(make_source(stdio_config()), CONTEXT) as source:
            crashed = await source.call_tool("crash", {})
            after = await source.call_tool("lookup_order", {"order_id": "D-4"})

    assert crashed.result is None and crashed.error
    assert after.result is None and after.error


@pytest.mark.anyio
async def test_env_secrets_reach_the_stdio_server_but_the_parent_environment_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_PARENT_ONLY", "parent-value")
    record = make_source(stdio_config(), {"env:ORDERS_DB_URL": "postgres://orders"})

    async with McpSource(record, CONTEXT) as source:
        passed = await source.call_tool("read_env", {"name": "ORDERS_DB_URL"})
        inherited = await source.call_tool("read_env", {"name": "CAIRN_PARENT_ONLY"})

    assert passed.result == "postgres://orders"
    assert inherited.result == ""


@pytest.mark.anyio
async def test_a_stdio_command_that_does_not_exist_is_unreachable() -> None:
    error = await open_failure({"transport": "stdio", "command": "/nonexistent/orders-mcp"})

    assert error.reason == "unreachable"
    assert "/nonexistent/orders-mcp" in error.message
    assert "not found" in error.message


@pytest.mark.anyio
async def test_a_server_that_dies_before_the_handshake_is_unreachable_with_its_last_stderr_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = (
        "import os, sys; "
        "print('starting', file=sys.stderr); "
        "print('fatal: key rejected:', os.environ['ORDERS_KEY'], file=sys.stderr); "
        "sys.exit(3)"
    )
    config = {"transport": "stdio", "command": sys.executable, "args": ["-c", script]}

    error = await open_failure(config, {"env:ORDERS_KEY": "k-0a9b8c7d6e"})

    assert error.reason == "unreachable"
    assert "fatal: key rejected: ***" in error.message
    assert "k-0a9b8c7d6e" not in error.message
    assert "\n" not in error.message
    assert "fatal" not in capfd.readouterr().err


@pytest.mark.slow
@pytest.mark.anyio
async def test_check_health_times_out_on_a_server_that_never_speaks_mcp_and_leaves_no_child(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    config = {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-c", script, str(pid_file)],
    }
    started = time.monotonic()

    health = await check_health(make_source(config), CONTEXT, timeout_s=5)

    # The check's limit holds closing included: the SDK's stop (stdin closed, 2 s, SIGTERM)
    # comes out of the 5 s, not on top of them.
    assert time.monotonic() - started < 5
    assert (health.ok, health.reason) == (False, "timeout")
    assert "within 5 s" in health.message
    assert process_is_gone(int(pid_file.read_text()))


@pytest.mark.anyio
async def test_check_health_of_a_working_server_names_its_tools() -> None:
    health = await check_health(make_source(stdio_config()), CONTEXT)

    assert health == HealthResult(
        ok=True,
        reason=None,
        message=f"orders: listed {len(ORDERS_TOOLS)} tools",
        tool_names=health.tool_names,
        duration_ms=health.duration_ms,
    )
    assert sorted(health.tool_names) == list(ORDERS_TOOLS)
    assert health.duration_ms > 0


# -- HTTP --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_source_with_the_right_bearer_token_lists_and_calls_tools(
    bearer_server: HttpServer,
) -> None:
    record = make_source(bearer_server.config(), {"token": TOKEN})

    async with McpSource(record, CONTEXT) as source:
        names = sorted(spec.name for spec in await source.list_tools())
        output = await source.call_tool("lookup_order", {"order_id": "H-1"})

    assert names == list(ORDERS_TOOLS)
    assert output.result == "order H-1: shipped"


@pytest.mark.anyio
async def test_a_wrong_bearer_token_is_auth_refused_and_the_message_hides_it(
    bearer_server: HttpServer,
) -> None:
    wrong = "tok-wrong-77aa55"

    error = await open_failure(bearer_server.config(), {"token": wrong})

    assert error.reason == "auth_refused"
    assert error.message == (
        f"orders: server at {bearer_server.url} refused the credentials (HTTP 401): "
        "check the bearer token"
    )
    assert wrong not in error.message and TOKEN not in error.message


@pytest.mark.anyio
async def test_no_credentials_for_a_server_that_wants_them_is_auth_refused_with_a_hint(
    bearer_server: HttpServer,
) -> None:
    error = await open_failure(bearer_server.config(auth="none"))

    assert error.reason == "auth_refused"
    assert "bearer or header auth" in error.message


@pytest.mark.anyio
async def test_custom_header_auth_reaches_the_server(header_server: HttpServer) -> None:
    record = make_source(header_server.config(), {"token": TOKEN})

    async with McpSource(record, CONTEXT) as source:
        output = await source.call_tool("add", {"a": 40, "b": 2})

    assert output.result == 42


@pytest.mark.anyio
async def test_a_wrong_custom_header_value_is_auth_refused_naming_the_header(
    header_server: HttpServer,
) -> None:
    error = await open_failure(header_server.config(), {"token": "nope-31337"})

    assert error.reason == "auth_refused"
    assert HEADER in error.message
    assert "nope-31337" not in error.message


@pytest.mark.anyio
async def test_a_url_with_nothing_listening_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"

    error = await open_failure({"transport": "http", "url": url})

    assert error.reason == "unreachable"
    assert url in error.message


@pytest.mark.anyio
async def test_a_wrong_path_is_an_error_that_points_at_the_url(bearer_server: HttpServer) -> None:
    url = bearer_server.url.replace("/mcp", "/not-mcp")

    error = await open_failure(bearer_server.config(url=url), {"token": TOKEN})

    assert error.reason == "error"
    assert "HTTP 404" in error.message
    assert url in error.message


@pytest.mark.anyio
async def test_check_health_over_http_reports_auth_refused(bearer_server: HttpServer) -> None:
    health = await check_health(make_source(bearer_server.config(), {"token": "stale"}), CONTEXT)

    assert (health.ok, health.reason, health.tool_names) == (False, "auth_refused", [])


# -- configuration -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "secret", "reason", "says"),
    [
        ({"transport": "carrier-pigeon"}, {}, "error", "one of stdio, http"),
        ({"transport": "stdio"}, {}, "error", "needs a command"),
        ({"transport": "stdio", "command": "x", "args": "-v"}, {}, "error", "list of strings"),
        (
            {"transport": "stdio", "command": sys.executable, "cwd": "/nonexistent/dir"},
            {},
            "unreachable",
            "working directory '/nonexistent/dir' does not exist",
        ),
        ({"transport": "http", "url": "ftp://example.test/mcp"}, {}, "error", "not an http"),
        (
            {"transport": "http", "url": "http://127.0.0.1:1/mcp", "auth": "bearer"},
            {},
            "error",
            "no token is stored",
        ),
        (
            {"transport": "http", "url": "http://127.0.0.1:1/mcp", "auth": "header"},
            {"token": "t-1"},
            "error",
            "header_name is not set",
        ),
        (
            {"transport": "http", "url": "http://127.0.0.1:1/mcp", "auth": "oauth"},
            {"token": "t-1"},
            "error",
            "one of none, bearer, header",
        ),
    ],
)
async def test_a_config_that_cannot_work_is_refused_with_what_to_change(
    config: dict[str, Any], secret: dict[str, str], reason: str, says: str
) -> None:
    error = await open_failure(config, secret)

    assert error.reason == reason
    assert error.message.startswith("orders: ")
    assert says in error.message
