"""The offline ``scripted`` backend: script validation, placeholders, streaming, tokens.

The backend is driven directly through its ``stream`` interface with hand-built requests,
so each expectation below is worked out from the request, not read back from the backend.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import pytest

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Usage
from cairn.domain.tools import ToolSpec
from cairn.errors import InvalidScript, ModelError
from cairn.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.models.scripted import ScriptedBackend, count_tokens, parse_script


def request(
    *,
    turn: int = 0,
    event: Any = None,
    system: str = "",
    messages: list[Message] | None = None,
    tools: list[ToolSpec] | None = None,
) -> ModelRequest:
    return ModelRequest(
        system=system,
        messages=messages if messages is not None else [],
        tools=tools or [],
        settings=ModelSettings(),
        turn=turn,
        event_payload=event,
    )


async def play(script: Any, req: ModelRequest) -> list[ModelEvent]:
    backend = ScriptedBackend(ModelSettings(script=script))
    return [event async for event in backend.stream(req)]


def texts(events: list[ModelEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def calls(events: list[ModelEvent]) -> list[ToolCallRequest]:
    return [e for e in events if isinstance(e, ToolCallRequest)]


def turn_end(events: list[ModelEvent]) -> TurnEnd:
    ends = [e for e in events if isinstance(e, TurnEnd)]
    assert len(ends) == 1, "every turn ends with exactly one TurnEnd"
    assert events[-1] is ends[0], "TurnEnd comes last"
    return ends[0]


def after_one_result(result: Any) -> list[Message]:
    """A conversation in which one tool call already returned ``result``."""
    call = ToolCallRequest("call_0_0", "lookup", {})
    return [
        Message("user", "hi"),
        Message("assistant", "", (call,)),
        Message("tool", tool_results=(ToolResultMessage("call_0_0", "lookup", result),)),
    ]


# --- parse_script -------------------------------------------------------------------


def test_a_script_that_is_not_an_object_is_rejected_with_the_expected_shape() -> None:
    with pytest.raises(InvalidScript, match="object with a 'turns' list"):
        parse_script(42)


def test_a_script_object_without_a_turns_list_is_rejected() -> None:
    with pytest.raises(InvalidScript, match="'turns' list"):
        parse_script({"steps": []})


def test_an_unknown_then_is_rejected_quoting_the_value() -> None:
    with pytest.raises(InvalidScript, match="'stop' or 'repeat_last', not 'loop'"):
        parse_script({"turns": ["hi"], "then": "loop"})


def test_an_unknown_turn_key_is_named_with_the_known_keys() -> None:
    with pytest.raises(InvalidScript) as caught:
        parse_script({"turns": [{"text": "hi"}, {"txt": "typo"}]})
    message = str(caught.value)
    assert "turn 1" in message
    assert "'txt'" in message
    assert "text" in message and "tool_calls" in message


def test_a_turn_that_is_neither_object_nor_string_is_rejected_by_index() -> None:
    with pytest.raises(InvalidScript, match="script turn 0 must be an object or a string"):
        parse_script([7])


def test_a_tool_call_without_a_name_is_rejected() -> None:
    with pytest.raises(InvalidScript, match="each tool call needs a 'name'"):
        parse_script([{"tool_calls": [{"arguments": {}}]}])


def test_tool_call_arguments_must_be_an_object() -> None:
    with pytest.raises(InvalidScript, match="'arguments' must be an object"):
        parse_script([{"tool_calls": [{"name": "x", "arguments": [1, 2]}]}])


def test_a_non_numeric_delay_is_an_invalid_script_not_a_crash() -> None:
    with pytest.raises(InvalidScript, match="delay_s"):
        parse_script([{"text": "hi", "delay_s": "soon"}])


def test_string_and_list_shorthands_parse_to_turns() -> None:
    assert [t.text for t in parse_script("hello").turns] == ["hello"]
    parsed = parse_script(["one", {"text": "two"}])
    assert [t.text for t in parsed.turns] == ["one", "two"]
    assert parsed.then == "stop"


# --- streaming and placeholders -------------------------------------------------------


@pytest.mark.anyio
async def test_text_is_streamed_as_several_deltas_that_join_to_the_text() -> None:
    text = "The order has shipped today and should arrive on Monday before noon."
    events = await play([text], request())
    deltas = texts(events)
    assert len(deltas) == 3
    assert "".join(deltas) == text
    assert all(len(d) >= 24 and d.endswith(" ") for d in deltas[:-1])
    assert turn_end(events).stop_reason == "end_turn"


@pytest.mark.anyio
async def test_event_placeholders_fill_text_with_nested_fields() -> None:
    event = {"customer": {"name": "Ada", "tier": 3}, "items": ["lamp", "desk"]}
    script = ["Hi {{event.customer.name}} (tier {{event.customer.tier}}), {{event.items.1}}"]
    events = await play(script, request(event=event))
    assert "".join(texts(events)) == "Hi Ada (tier 3), desk"


@pytest.mark.anyio
async def test_a_missing_field_renders_empty_in_text_and_unknown_names_are_left_alone() -> None:
    events = await play(["[{{event.nope}}] {{mystery}}"], request(event={"a": 1}))
    assert "".join(texts(events)) == "[] {{mystery}}"


@pytest.mark.anyio
async def test_a_whole_placeholder_argument_keeps_its_json_type() -> None:
    event = {"order": {"id": 42, "lines": [{"sku": "A"}]}, "urgent": True}
    script = [
        {
            "tool_calls": [
                {
                    "name": "lookup",
                    "arguments": {
                        "order_id": "{{event.order.id}}",
                        "lines": "{{ event.order.lines }}",
                        "urgent": "{{event.urgent}}",
                        "label": "order {{event.order.id}}",
                        "nested": {"first": ["{{event.order.lines.0.sku}}"]},
                        "constant": 5,
                    },
                }
            ]
        }
    ]
    (call,) = calls(await play(script, request(event=event)))
    assert call.arguments == {
        "order_id": 42,
        "lines": [{"sku": "A"}],
        "urgent": True,
        "label": "order 42",
        "nested": {"first": ["A"]},
        "constant": 5,
    }


@pytest.mark.anyio
async def test_results_placeholders_index_the_runs_tool_results_from_either_end() -> None:
    result = {"status": "shipped", "eta_days": 2}
    script = [
        "unused",
        {
            "text": "Status: {{results.-1.status}}, whole: {{results.0}}",
            "tool_calls": [{"name": "notify", "arguments": {"payload": "{{results.-1}}"}}],
        },
    ]
    events = await play(script, request(turn=1, messages=after_one_result(result)))
    assert "".join(texts(events)) == (
        'Status: shipped, whole: {"eta_days": 2, "status": "shipped"}'
    )
    assert calls(events)[0].arguments == {"payload": result}


@pytest.mark.anyio
async def test_tools_placeholder_lists_the_advertised_names() -> None:
    tools = [ToolSpec("clock_now", "c"), ToolSpec("regex_find", "r")]
    events = await play(["I have: {{tools}}"], request(tools=tools))
    assert "".join(texts(events)) == "I have: clock_now, regex_find"


@pytest.mark.anyio
async def test_tool_calls_get_ids_by_turn_and_index_and_stop_for_tool_use() -> None:
    script = ["x", {"tool_calls": [{"name": "a"}, {"name": "b", "arguments": {"k": 1}}]}]
    events = await play(script, request(turn=1))
    assert [(c.call_id, c.name, c.arguments) for c in calls(events)] == [
        ("call_1_0", "a", {}),
        ("call_1_1", "b", {"k": 1}),
    ]
    assert turn_end(events).stop_reason == "tool_use"


@pytest.mark.anyio
async def test_a_scripted_stop_reason_overrides_the_default() -> None:
    events = await play([{"text": "cut", "stop_reason": "max_tokens"}], request())
    assert turn_end(events).stop_reason == "max_tokens"


@pytest.mark.anyio
async def test_when_turns_run_out_then_stop_answers_empty() -> None:
    events = await play({"turns": ["only"], "then": "stop"}, request(turn=3))
    assert texts(events) == []
    assert calls(events) == []
    assert turn_end(events).stop_reason == "end_turn"


@pytest.mark.anyio
async def test_when_turns_run_out_repeat_last_plays_the_last_turn_again() -> None:
    script = {"turns": ["first", {"tool_calls": [{"name": "again"}]}], "then": "repeat_last"}
    events = await play(script, request(turn=5))
    assert [c.call_id for c in calls(events)] == ["call_5_0"]


@pytest.mark.anyio
async def test_an_error_turn_raises_model_error_with_the_scripted_message() -> None:
    with pytest.raises(ModelError, match="vendor overloaded"):
        await play([{"text": "never said", "error": "vendor overloaded"}], request())


@pytest.mark.anyio
async def test_a_delayed_turn_waits_and_can_be_cancelled_while_waiting() -> None:
    backend = ScriptedBackend(ModelSettings(script=[{"text": "late", "delay_s": 30}]))
    received: list[ModelEvent] = []
    with anyio.fail_after(5), anyio.move_on_after(0.05) as scope:
        async for event in backend.stream(request()):
            received.append(event)
    assert scope.cancelled_caught
    assert received == []


# --- tokens -----------------------------------------------------------------------------


def test_count_tokens_is_one_per_four_characters_rounded_up() -> None:
    assert [count_tokens("x" * n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]


@pytest.mark.anyio
async def test_token_counts_cover_everything_sent_and_received() -> None:
    spec = ToolSpec("lookup", "Find an order.", {"type": "object"})
    req = request(
        system="Be brief.",
        messages=[Message("user", "Where is order 7?")],
        tools=[spec],
    )
    script = [{"text": "Checking.", "tool_calls": [{"name": "lookup", "arguments": {"id": 7}}]}]
    usage = turn_end(await play(script, req)).usage
    sent = "Be brief." + "Where is order 7?" + "lookup" + "Find an order." + '{"type": "object"}'
    received = "Checking." + '{"id": 7}' + "lookup"
    assert usage == Usage(
        tokens_in=math.ceil(len(sent) / 4), tokens_out=math.ceil(len(received) / 4)
    )


@pytest.mark.anyio
async def test_tool_results_in_the_conversation_count_as_prompt_tokens() -> None:
    result = {"status": "shipped"}
    events = await play(["x", "Done."], request(turn=1, messages=after_one_result(result)))
    sent = "hi" + "lookup" + json.dumps({}) + json.dumps(result)
    assert turn_end(events).usage == Usage(
        tokens_in=math.ceil(len(sent) / 4), tokens_out=math.ceil(len("Done.") / 4)
    )


@pytest.mark.anyio
async def test_the_same_turn_always_costs_the_same() -> None:
    req = request(system="s" * 37, messages=[Message("user", "payload " * 11)])
    first = turn_end(await play(["An answer of some length."], req)).usage
    second = turn_end(await play(["An answer of some length."], req)).usage
    assert first == second
    assert first.tokens_in > 0 and first.tokens_out > 0


@pytest.mark.anyio
async def test_scripted_usage_overrides_the_counted_tokens() -> None:
    script = [{"text": "hi", "usage": {"tokens_in": 1000, "cache_read_tokens": 600}}]
    usage = turn_end(await play(script, request())).usage
    assert usage == Usage(tokens_in=1000, tokens_out=1, cache_read_tokens=600)
