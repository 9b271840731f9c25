"""``explain`` on runs whose tools did not resolve as intended, each built for real: no
sources, an app with no OAuth connection, a stopped MCP server, a wrong token, a server that
hangs, a revoked or misnamed source, a stale allowlist, an allowlist that hides what the
prompt asks for."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from cairn.services.app import App
from cairn.services.connections import add_integration_source
from cairn.services.sources import revoke_source
from tests.diagnosis.helpers import (
    ORDERS_TOKEN,
    add_http_source,
    fire_and_explain,
    make_agent,
    only,
)
from tests.mcp_servers import HttpServer, serve_http

pytestmark = pytest.mark.anyio


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


async def test_an_agent_tool_less_by_choice_is_not_a_problem(app: App) -> None:
    await make_agent(app, "I can only talk.", tool_sources=[])
    explained = await fire_and_explain(app)
    finding = only(explained, "tool_less_by_choice")
    assert finding.severity == "info" and not finding.needs_fixing
    assert "tool_sources is []" in finding.cause
    assert finding.fix.startswith("Nothing to fix")
    assert "cairn agent update support --tool-sources default" in finding.fix
    assert finding.evidence["sources_resolved"] == []
    assert finding.evidence["tool_sources"] == []
    assert explained.summary.startswith(f"Run {explained.subject} of support (succeeded, ")


async def test_an_app_without_oauth_connection_names_the_connect_command(app: App) -> None:
    add_integration_source(app, "default", "slack", provider_url="http://127.0.0.1:9/mcp")
    await make_agent(app, "Posting.", tool_sources=["slack"])
    explained = await fire_and_explain(app)
    finding = only(explained, "source_skipped")
    assert finding.severity == "error"
    assert finding.cause.startswith("slack has no OAuth connection")
    assert "cairn connection add slack" in finding.fix
    assert finding.evidence["reason"] == "oauth_missing"
    assert finding.evidence["sources_skipped"][0]["label"] == "slack"
    assert finding.evidence["app_slug"] == "slack"


async def test_a_stopped_mcp_server_is_down_start_it_then_test_the_source(app: App) -> None:
    with serve_http(ORDERS_TOKEN) as server:
        await add_http_source(app, "orders", server.url)
    await make_agent(
        app, "Looking.", tool_sources=["builtin", "orders"], tool_allowlist=["orders_lookup_order"]
    )
    explained = await fire_and_explain(app)
    finding = only(explained, "source_skipped")
    assert f"MCP server 'orders' at {server.url} is down" in finding.cause
    assert "The allowlist's 'orders_lookup_order' probably comes from it" in finding.cause
    assert finding.evidence["allowlist_missing_entries"][0]["possibly_from_skipped"] == "orders"
    assert "stale_allowlist" not in explained.codes()  # the entry is real, its server is down
    assert "Start it, then `cairn source test orders`" in finding.fix
    assert finding.evidence["reason"] == "unreachable"
    assert finding.evidence["url"] == server.url
    assert "cannot connect" in finding.evidence["sources_skipped"][0]["message"]


async def test_a_wrong_token_is_refused_credentials(app: App, orders_server: HttpServer) -> None:
    await add_http_source(app, "orders", orders_server.url, token="not-the-token")
    await make_agent(app, "Looking.", tool_sources=["orders"])
    explained = await fire_and_explain(app)
    finding = only(explained, "source_skipped")
    assert "refused the credentials" in finding.cause
    assert finding.evidence["reason"] == "auth_refused"
    assert "HTTP 401" in finding.evidence["sources_skipped"][0]["message"]
    assert "cairn source revoke orders --yes" in finding.fix
    assert f"cairn source add orders --url {orders_server.url} --auth bearer" in finding.fix
    assert "not-the-token" not in str(explained.to_dict())


async def test_a_hung_server_timed_out_listing_its_tools(quick_app: App, silent_port: int) -> None:
    await add_http_source(quick_app, "slowpoke", f"http://127.0.0.1:{silent_port}/mcp")
    await make_agent(quick_app, "Waiting.", tool_sources=["slowpoke"])
    explained = await fire_and_explain(quick_app)
    finding = only(explained, "source_skipped")
    assert finding.evidence["reason"] == "timeout"
    assert "did not list its tools within the resolution timeout (0.3 s)" in finding.cause
    assert "CAIRN_RESOLVE_TIMEOUT_S" in finding.fix
    assert "cairn source test slowpoke" in finding.fix


async def test_a_revoked_source_the_agent_still_names_is_disabled(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    revoke_source(app, "default", "orders")
    await make_agent(app, "Looking.", tool_sources=["builtin", "orders"])
    explained = await fire_and_explain(app)
    finding = only(explained, "source_skipped")
    assert finding.evidence["reason"] == "disabled"
    assert "was revoked" in finding.cause
    assert """cairn agent update support --tool-sources '["builtin"]'""" in finding.fix


async def test_a_misnamed_source_is_not_found_with_the_closest_name(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    await make_agent(app, "Looking.", tool_sources=["builtin", "order"])
    explained = await fire_and_explain(app)
    finding = only(explained, "source_skipped")
    assert finding.evidence["reason"] == "not_found"
    assert "names 'order', which is no source id, label or kind" in finding.cause
    assert finding.evidence["suggestions"][0] == "orders"
    assert """--tool-sources '["builtin", "orders"]'""" in finding.fix


async def test_every_allowlist_entry_stale_suggests_the_real_names(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    await make_agent(
        app, "", tool_sources=["orders"], tool_allowlist=["lookup_order", "ordr_summary"]
    )
    explained = await fire_and_explain(app)
    finding = only(explained, "stale_allowlist")
    assert finding.severity == "error"
    assert finding.cause.startswith("Every allowlist entry is stale")
    assert "'lookup_order' → 'orders_lookup_order'" in finding.fix
    assert (
        "cairn agent update support --tool-allowlist "
        """'["orders_lookup_order", "orders_order_summary"]'"""
    ) in finding.fix
    missing = finding.evidence["allowlist_missing_entries"]
    assert [m["entry"] for m in missing] == ["lookup_order", "ordr_summary"]
    assert missing[0]["suggestions"][0] == "orders_lookup_order"
    assert explained.findings[0].code == "stale_allowlist"  # the root cause comes first
    assert "nothing" not in explained.codes()


async def test_a_tool_the_prompt_asks_for_but_the_allowlist_hides_is_flagged(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    await make_agent(
        app,
        "I would look it up, but I cannot.",
        system_prompt="Look up the customer's order and reply with where it is.",
        tool_sources=["orders"],
        tool_allowlist=["orders_add"],
    )
    explained = await fire_and_explain(app, payload={"order_id": "A-1"})
    finding = only(explained, "allowlist_blocks_needed_tool")
    assert "orders_lookup_order (the system prompt mentions 'lookup' and 'order')" in finding.cause
    assert (
        """cairn agent update support --tool-allowlist '["orders_add", "orders_lookup_order"]'"""
        in finding.fix
    )
    assert finding.evidence["matched_words"]["orders_lookup_order"] == ["lookup", "order"]
    assert "orders_lookup_order" in finding.evidence["allowlist_filtered_out"]
    assert "orders_crash" not in finding.evidence["matched_words"]
    assert "model_chose_no_tool" in explained.codes()


async def test_a_stale_entry_with_no_look_alike_is_to_be_dropped(app: App) -> None:
    await make_agent(app, "", tool_allowlist=["clock_now", "zzz_nothing"])
    explained = await fire_and_explain(app)
    finding = only(explained, "stale_allowlist")
    assert finding.severity == "warning"
    assert finding.cause == "1 allowlist entry matches no real tool: 'zzz_nothing'."
    assert finding.fix == (
        "Drop 'zzz_nothing': no real tool looks like it (`cairn agent tools support` lists "
        """what there is): `cairn agent update support --tool-allowlist '["clock_now"]'`."""
    )
