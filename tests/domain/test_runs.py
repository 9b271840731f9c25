"""The run row's pure parts: the outcome vocabulary and the stored forms."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from typing import get_args

import pytest

from cairn.domain.runs import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    RUN_STATUSES,
    Run,
    RunEvent,
    RunFilter,
    RunOutcome,
    RunStatus,
    ToolCall,
    Usage,
    decide_outcome,
)
from cairn.domain.trace import ToolResolutionTrace

OK_CALL = ToolCall("call_0_0", "clock_now", {}, result="2024-01-01T00:00:00+00:00")
BAD_CALL = ToolCall("call_0_1", "json_extract", {"path": "x"}, error="path 'x' has no 'x'")


def test_a_run_that_called_tools_successfully_acted() -> None:
    assert (
        decide_outcome(status="succeeded", advertised=3, tool_calls=[OK_CALL], output_text="")
        == "acted"
    )


def test_one_errored_call_among_good_ones_makes_tool_errors() -> None:
    assert (
        decide_outcome(
            status="succeeded", advertised=3, tool_calls=[OK_CALL, BAD_CALL], output_text="ok"
        )
        == "tool_errors"
    )


def test_text_only_with_tools_available_is_answered() -> None:
    assert (
        decide_outcome(status="succeeded", advertised=2, tool_calls=[], output_text="Hello")
        == "answered"
    )


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_no_call_and_no_text_with_tools_available_is_model_chose_no_tool(text: str) -> None:
    assert (
        decide_outcome(status="succeeded", advertised=2, tool_calls=[], output_text=text)
        == "model_chose_no_tool"
    )


def test_nothing_advertised_is_no_tools_available_even_with_an_answer() -> None:
    assert (
        decide_outcome(status="succeeded", advertised=0, tool_calls=[], output_text="Hi")
        == "no_tools_available"
    )


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_run_that_ended_early_before_any_call_is_interrupted(status: RunStatus) -> None:
    assert (
        decide_outcome(status=status, advertised=2, tool_calls=[], output_text="partial")
        == "interrupted"
    )


def test_calls_made_before_a_failure_still_show_in_the_outcome() -> None:
    assert (
        decide_outcome(status="failed", advertised=2, tool_calls=[BAD_CALL], output_text="")
        == "tool_errors"
    )


def test_every_outcome_is_reachable_from_decide_outcome() -> None:
    reached = {
        decide_outcome(status="succeeded", advertised=1, tool_calls=[OK_CALL], output_text=""),
        decide_outcome(status="succeeded", advertised=1, tool_calls=[BAD_CALL], output_text=""),
        decide_outcome(status="succeeded", advertised=1, tool_calls=[], output_text="a"),
        decide_outcome(status="succeeded", advertised=1, tool_calls=[], output_text=""),
        decide_outcome(status="succeeded", advertised=0, tool_calls=[], output_text=""),
        decide_outcome(status="failed", advertised=1, tool_calls=[], output_text=""),
    }
    assert reached == set(get_args(RunOutcome))


def test_statuses_split_into_live_and_final() -> None:
    assert set(LIVE_STATUSES) | set(FINAL_STATUSES) == set(get_args(RunStatus))
    assert not set(LIVE_STATUSES) & set(FINAL_STATUSES)
    assert set(RUN_STATUSES) == set(get_args(RunStatus))


def test_a_tool_call_round_trips_through_its_stored_form() -> None:
    call = ToolCall("call_1_0", "regex_find", {"pattern": "a+"}, ["aa"], None, 1.23456)
    stored = call.to_dict()
    assert stored == {
        "call_id": "call_1_0",
        "name": "regex_find",
        "arguments": {"pattern": "a+"},
        "result": ["aa"],
        "error": None,
        "error_kind": None,
        "duration_ms": 1.235,
    }
    assert ToolCall.from_dict(stored) == ToolCall(
        "call_1_0", "regex_find", {"pattern": "a+"}, ["aa"], None, 1.235
    )


def test_a_tool_call_keeps_its_error_kind_and_drops_one_it_does_not_know() -> None:
    call = ToolCall(
        "c", "http_request", {}, None, "host 'x' is not allowed", 1.0, "host_not_allowed"
    )
    assert ToolCall.from_dict(call.to_dict()).error_kind == "host_not_allowed"
    assert ToolCall.from_dict(call.to_dict() | {"error_kind": "gremlins"}).error_kind is None
    assert ToolCall.from_dict({"call_id": "c", "name": "n"}).error_kind is None  # older rows


def test_usage_accumulates_every_counter() -> None:
    total = Usage(1, 2, 3, 4)
    total.add(Usage(10, 20, 30, 40))
    assert total == Usage(11, 22, 33, 44)


def test_run_to_dict_flattens_usage_and_serialises_times_and_trace() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    run = Run(
        run_id="run_x",
        sandbox_id="default",
        agent_id="agt_x",
        agent_slug="support",
        agent_version=2,
        kind="test",
        status="succeeded",
        event_payload={"a": 1},
        outcome="acted",
        tool_calls=[OK_CALL],
        usage=Usage(5, 6, 1, 0),
        tool_resolution_trace=ToolResolutionTrace(tool_names_advertised=["clock_now"]),
        created_at=when,
        finished_at=when,
    )
    data = run.to_dict()
    assert (data["tokens_in"], data["tokens_out"], data["cache_read_tokens"]) == (5, 6, 1)
    assert data["tool_calls"] == [OK_CALL.to_dict()]
    assert data["tool_resolution_trace"]["tool_names_advertised"] == ["clock_now"]
    assert data["created_at"] == "2024-05-01T12:00:00+00:00"
    assert data["started_at"] is None


def test_run_event_to_dict_keeps_seq_kind_and_data() -> None:
    event = RunEvent(3, "tool_call", {"call_id": "c", "name": "n", "arguments": {}})
    assert event.to_dict() == {
        "seq": 3,
        "kind": "tool_call",
        "data": {"call_id": "c", "name": "n", "arguments": {}},
        "created_at": None,
    }


def test_a_run_filter_selects_a_whole_sandbox_by_default_and_cannot_be_changed() -> None:
    where = RunFilter(sandbox_id="default")
    assert (where.agent_id, where.status, where.trigger_id, where.kind) == (None,) * 4
    assert (where.before, where.since, where.until, where.limit) == (None, None, None, 20)
    with pytest.raises(FrozenInstanceError):
        where.limit = 50  # type: ignore[misc]
