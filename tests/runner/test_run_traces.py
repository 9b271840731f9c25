"""The tool-resolution trace stored on the run row explains what the agent saw."""

from __future__ import annotations

import anyio
import pytest

from cairn.domain.trace import ToolResolutionTrace
from cairn.services.agents import agent_catalog
from cairn.services.app import App
from cairn.services.runs import fire_agent
from cairn.services.sources import revoke_source
from tests.runner.helpers import (
    BUILTIN_NAMES,
    SANDBOX,
    add_source,
    assert_complete,
    make_agent,
    stored,
)

CLOCK = [{"tool_calls": [{"name": "clock_now"}]}, "Done."]


async def fire_and_trace(
    app: App, *, tool_sources: list[str] | None = None, tool_allowlist: list[str] | None = None
) -> ToolResolutionTrace:
    """Fire an agent that calls ``clock_now`` and return the trace stored on its run."""
    await make_agent(app, CLOCK, tool_sources=tool_sources, tool_allowlist=tool_allowlist)
    with anyio.fail_after(10):
        fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)
    assert_complete(run, events)
    assert run.tool_resolution_trace is not None
    return run.tool_resolution_trace


@pytest.mark.anyio
async def test_no_tool_sources_resolves_the_builtin_default(app: App) -> None:
    trace = await fire_and_trace(app, tool_sources=None)
    assert [(s.source_id, s.kind, s.tool_count) for s in trace.sources_resolved] == [
        ("builtin", "builtin", 4)
    ]
    assert trace.tool_names_advertised == BUILTIN_NAMES
    assert trace.duration_ms >= 0


@pytest.mark.anyio
async def test_an_empty_tool_sources_list_resolves_nothing(app: App) -> None:
    await make_agent(app, "Just talk.", tool_sources=[])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    trace = stored(app, fired.run_id)[0].tool_resolution_trace
    assert trace is not None
    assert (trace.sources_resolved, trace.sources_skipped, trace.tool_names_advertised) == (
        [],
        [],
        [],
    )


@pytest.mark.anyio
async def test_a_stale_allowlist_entry_is_reported_as_missing_with_suggestions(app: App) -> None:
    crm = add_source(app, ["lookup_order", "refund"], label="crm", namespace="crm")
    trace = await fire_and_trace(
        app,
        tool_sources=["builtin", crm.source_id],
        tool_allowlist=["clock_now", "lookup_order", "clock_nw", "crm_refund"],
    )
    missing = {m.entry: m.suggestions for m in trace.allowlist_missing_entries}
    assert set(missing) == {"lookup_order", "clock_nw"}
    assert missing["lookup_order"][0] == "crm_lookup_order"
    assert missing["clock_nw"][0] == "clock_now"
    assert trace.tool_names_advertised == ["clock_now", "crm_refund"]
    assert trace.allowlist_filtered_out == [
        "http_request",
        "json_extract",
        "regex_find",
        "crm_lookup_order",
    ]


@pytest.mark.anyio
async def test_allowlist_patterns_apply_to_the_run(app: App) -> None:
    trace = await fire_and_trace(app, tool_allowlist=["clock_*", "json_*"])
    assert trace.tool_names_advertised == ["clock_now", "json_extract"]
    assert trace.allowlist_missing_entries == []


@pytest.mark.anyio
async def test_a_hanging_source_is_skipped_for_timeout_and_the_run_still_completes(
    quick_app: App,
) -> None:
    slow = add_source(quick_app, ["slow_tool"], label="slow crm", behaviour="hang")
    fast = add_source(quick_app, ["ping_other"], label="fast crm")
    trace = await fire_and_trace(
        quick_app, tool_sources=["builtin", slow.source_id, fast.source_id]
    )
    (skip,) = trace.sources_skipped
    assert (skip.source_id, skip.label, skip.reason) == (slow.source_id, "slow crm", "timeout")
    assert "0.3 s" in skip.message
    assert [s.label for s in trace.sources_resolved] == ["builtin", "fast crm"]
    assert trace.tool_names_advertised == [*BUILTIN_NAMES, "ping_other"]


@pytest.mark.anyio
async def test_a_source_refusing_credentials_is_skipped_as_auth_refused(app: App) -> None:
    billing = add_source(app, ["refund"], label="billing", behaviour="refuse", namespace="bill")
    trace = await fire_and_trace(
        app,
        tool_sources=["builtin", billing.source_id],
        tool_allowlist=["clock_now", "bill_refund"],
    )
    (skip,) = trace.sources_skipped
    assert (skip.reason, skip.message) == ("auth_refused", "billing: the server answered 403")
    (missing,) = trace.allowlist_missing_entries
    assert (missing.entry, missing.possibly_from_skipped) == ("bill_refund", "billing")


@pytest.mark.anyio
async def test_a_named_source_that_does_not_exist_is_skipped_as_not_found(app: App) -> None:
    trace = await fire_and_trace(app, tool_sources=["builtin", "src_does_not_exist"])
    (skip,) = trace.sources_skipped
    assert (skip.source_id, skip.reason) == ("src_does_not_exist", "not_found")
    assert trace.tool_names_advertised == BUILTIN_NAMES


@pytest.mark.anyio
async def test_a_revoked_source_named_explicitly_is_skipped_as_disabled(app: App) -> None:
    crm = add_source(app, ["lookup_order"], label="crm")
    revoke_source(app, SANDBOX, crm.source_id)
    trace = await fire_and_trace(app, tool_sources=["builtin", crm.source_id])
    (skip,) = trace.sources_skipped
    assert (skip.source_id, skip.label, skip.reason) == (crm.source_id, "crm", "disabled")


@pytest.mark.anyio
async def test_a_name_offered_by_two_sources_is_recorded_as_a_conflict(app: App) -> None:
    first = add_source(app, ["search"], label="docs")
    second = add_source(app, ["search"], label="wiki")
    trace = await fire_and_trace(app, tool_sources=["builtin", first.source_id, second.source_id])
    assert trace.name_conflicts == ["search (wiki)"]
    assert trace.tool_names_advertised.count("search") == 1


@pytest.mark.anyio
async def test_the_catalog_shows_what_a_run_would_see(app: App) -> None:
    trace = await fire_and_trace(app, tool_allowlist=["clock_now", "regex_find"])
    catalog = await agent_catalog(app, SANDBOX, "tester")
    assert [tool["name"] for tool in catalog.tools] == trace.tool_names_advertised
    assert catalog.trace.allowlist_filtered_out == trace.allowlist_filtered_out
