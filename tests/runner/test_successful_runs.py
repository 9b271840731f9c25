"""A successful run, fired through the services, writes a complete row and its events."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from cairn.models.scripted import chunk_text
from cairn.services.agents import agent_catalog
from cairn.services.app import App
from cairn.services.runs import fire_agent, get_run_events
from tests.runner.helpers import (
    BUILTIN_NAMES,
    SANDBOX,
    assert_complete,
    kinds,
    make_agent,
    stored,
)

PAYLOAD = {"order": {"id": 42, "items": [{"title": "Lamp"}, {"title": "Desk"}]}}
SYSTEM = "Find the first item of the order."
SCRIPT = {
    "turns": [
        {
            "text": "Looking it up.",
            "tool_calls": [
                {
                    "name": "json_extract",
                    "arguments": {"document": "{{event.order}}", "path": "items.0.title"},
                }
            ],
        },
        {"text": "The first item of this order is {{results.-1}}, shipped from stock."},
    ]
}
ARGUMENTS = {"document": PAYLOAD["order"], "path": "items.0.title"}


def tokens(text: str) -> int:
    """The scripted backend's documented rule: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


async def expected_usage(app: App) -> tuple[int, int]:
    """Work out the two turns' token counts from what docs/scripted.md says is counted."""
    catalog = await agent_catalog(app, SANDBOX, "extractor")
    (spec,) = catalog.tools
    spec_text = (
        spec["name"] + spec["description"] + json.dumps(spec["input_schema"], sort_keys=True)
    )
    user = "Event payload:\n" + json.dumps(PAYLOAD, sort_keys=True, ensure_ascii=False)
    call_text = "json_extract" + json.dumps(ARGUMENTS, sort_keys=True)
    first_in = SYSTEM + user + spec_text
    first_out = "Looking it up." + json.dumps(ARGUMENTS, sort_keys=True) + "json_extract"
    second_in = SYSTEM + user + "Looking it up." + call_text + json.dumps("Lamp") + spec_text
    second_out = "The first item of this order is Lamp, shipped from stock."
    return (
        tokens(first_in) + tokens(second_in),
        tokens(first_out) + tokens(second_out),
    )


async def fire_extractor(app: App) -> Any:
    await make_agent(
        app, SCRIPT, slug="extractor", system_prompt=SYSTEM, tool_allowlist=["json_extract"]
    )
    return await fire_agent(app, SANDBOX, "extractor", PAYLOAD)


@pytest.mark.anyio
async def test_a_run_with_one_tool_call_writes_a_complete_row(app: App) -> None:
    fired = await fire_extractor(app)
    run, events = stored(app, fired.run_id)

    assert_complete(run, events)
    assert (run.status, run.outcome, run.kind) == ("succeeded", "acted", "test")
    assert (run.agent_slug, run.agent_version, run.trigger_id) == ("extractor", 1, None)
    assert run.event_payload == PAYLOAD
    assert run.output_text == "The first item of this order is Lamp, shipped from stock."
    assert run.error_message is None and run.error_type is None
    assert run.model == "scripted:scripted-1"
    assert run.cost_micros == 0

    (call,) = run.tool_calls
    assert (call.call_id, call.name) == ("call_0_0", "json_extract")
    assert call.arguments == ARGUMENTS
    assert (call.result, call.error) == ("Lamp", None)
    assert run.duration_ms is not None and 0 <= call.duration_ms < run.duration_ms

    tokens_in, tokens_out = await expected_usage(app)
    assert (run.usage.tokens_in, run.usage.tokens_out) == (tokens_in, tokens_out)
    assert (run.usage.cache_read_tokens, run.usage.cache_write_tokens) == (0, 0)

    trace = run.tool_resolution_trace
    assert trace is not None
    assert [(s.source_id, s.tool_count) for s in trace.sources_resolved] == [("builtin", 4)]
    assert trace.tool_names_advertised == ["json_extract"]
    assert trace.allowlist_filtered_out == [n for n in BUILTIN_NAMES if n != "json_extract"]
    assert trace.allowlist_missing_entries == []
    assert trace.sources_skipped == []


@pytest.mark.anyio
async def test_a_run_persists_its_events_in_order(app: App) -> None:
    fired = await fire_extractor(app)
    run, events = stored(app, fired.run_id)

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    first_count = len(chunk_text("Looking it up."))
    second_count = len(chunk_text(run.output_text))
    assert second_count >= 2  # a longer answer streams in several deltas
    assert kinds(events) == (
        ["text"] * first_count + ["tool_call", "tool_result"] + ["text"] * second_count + ["finish"]
    )
    first_turn = [e.data for e in events[:first_count]]
    assert "".join(d["delta"] for d in first_turn) == "Looking it up."
    assert {d["turn"] for d in first_turn} == {0}
    call_at = first_count
    assert events[call_at].data == {
        "call_id": "call_0_0",
        "name": "json_extract",
        "arguments": ARGUMENTS,
    }
    assert events[call_at + 1].data == {
        "call_id": "call_0_0",
        "name": "json_extract",
        "result": "Lamp",
        "error": None,
    }
    second_turn = [e.data for e in events[call_at + 2 : call_at + 2 + second_count]]
    assert "".join(d["delta"] for d in second_turn) == run.output_text
    assert {d["turn"] for d in second_turn} == {1}
    final = dict(events[-1].data)
    turns = final.pop("turns")
    assert final == {
        "stop_reason": "end_turn",
        "usage": {
            "tokens_in": run.usage.tokens_in,
            "tokens_out": run.usage.tokens_out,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        },
    }
    # Per-turn timing, usage and stop reason: what the run's totals cannot give back.
    assert [(t["turn"], t["stop_reason"], t["tool_call_ids"]) for t in turns] == [
        (0, "tool_use", ["call_0_0"]),
        (1, "end_turn", []),
    ]
    assert sum(t["tokens_in"] for t in turns) == run.usage.tokens_in
    assert sum(t["tokens_out"] for t in turns) == run.usage.tokens_out
    assert all(t["tokens_in"] > 0 for t in turns)
    called_at = events[call_at].created_at
    assert called_at is not None
    assert turns[0]["ended_at"] <= called_at.isoformat() <= turns[1]["started_at"]


@pytest.mark.anyio
async def test_events_can_be_read_from_a_sequence_number_on(app: App) -> None:
    fired = await fire_extractor(app)
    _, events = stored(app, fired.run_id)
    later = get_run_events(app, SANDBOX, fired.run_id, after_seq=4)
    assert later == events[4:]


@pytest.mark.anyio
async def test_the_returned_run_matches_the_stored_row(app: App) -> None:
    fired = await fire_extractor(app)
    run, _ = stored(app, fired.run_id)
    assert (fired.status, fired.outcome, fired.output_text) == (
        run.status,
        run.outcome,
        run.output_text,
    )
    assert fired.usage == run.usage
    assert [c.to_dict() for c in fired.tool_calls] == [c.to_dict() for c in run.tool_calls]


@pytest.mark.anyio
async def test_the_same_fire_costs_the_same_tokens_every_time(app: App) -> None:
    first = await fire_extractor(app)
    second = await fire_agent(app, SANDBOX, "extractor", PAYLOAD)
    assert first.usage == second.usage
    assert first.usage.tokens_in > 0


@pytest.mark.anyio
async def test_a_trigger_fire_keeps_its_trigger_id_and_a_test_fire_drops_it(app: App) -> None:
    await make_agent(app, "ok", slug="bound")
    by_trigger = await fire_agent(app, SANDBOX, "bound", {}, kind="trigger", trigger_id="trg_1")
    by_test = await fire_agent(app, SANDBOX, "bound", {}, kind="test", trigger_id="trg_1")
    assert stored(app, by_trigger.run_id)[0].trigger_id == "trg_1"
    assert stored(app, by_test.run_id)[0].trigger_id is None


@pytest.mark.anyio
async def test_a_string_payload_reaches_the_model_as_is(app: App) -> None:
    await make_agent(app, "You said: {{event}}", slug="echo", tool_sources=[])
    fired = await fire_agent(app, SANDBOX, "echo", "broken checkout")
    assert stored(app, fired.run_id)[0].output_text == "You said: broken checkout"
