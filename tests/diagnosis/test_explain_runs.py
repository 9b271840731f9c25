"""``explain`` on runs that resolved their tools but went wrong (or right) afterwards: the
model called nothing, tools errored, a tool the allowlist hid, model errors by reason,
max_turns, a timeout in the model and in a hung tool call, a cancel, and success. Each run
is a real scripted run through the runner."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from cairn.domain.runs import Run
from cairn.services.agents import get_agent
from cairn.services.app import App
from cairn.services.diagnosis import explain_run
from cairn.services.sources import available_sources
from cairn.store.runs import reap_stale_runs
from tests.diagnosis.helpers import (
    SANDBOX,
    add_http_source,
    fire,
    fire_and_explain,
    make_agent,
    only,
)
from tests.mcp_servers import HttpServer

pytestmark = pytest.mark.anyio


def _error(message: str, reason: str, **more: Any) -> list[dict[str, Any]]:
    return [{"error": {"message": message, "reason": reason, **more}}]


async def test_tools_offered_but_none_called_and_nothing_said_is_a_silent_no_op(
    app: App,
) -> None:
    await make_agent(app, [{"text": ""}])
    explained = await fire_and_explain(app)
    finding = only(explained, "model_chose_no_tool")
    assert finding.severity == "warning"
    assert "was offered 4 tools clock_now, http_request, json_extract and regex_find" in (
        finding.cause
    )
    assert "called none and said nothing (stop_reason 'end_turn', empty final text)" in (
        finding.cause
    )
    assert finding.evidence["stop_reason"] == "end_turn"
    assert finding.evidence["output_text"] == ""
    assert finding.evidence["outcome"] == "model_chose_no_tool"
    assert isinstance(finding.evidence["finish_event_seq"], int)
    assert f"cairn runs replay {explained.subject}" in finding.fix
    assert "when to call which tool" in finding.fix


async def test_a_text_only_answer_quotes_the_text_and_the_stop_reason(app: App) -> None:
    await make_agent(app, [{"text": "I cannot check orders.", "stop_reason": "refusal"}])
    explained = await fire_and_explain(app)
    finding = only(explained, "model_chose_no_tool")
    assert "answered in text only (stop_reason 'refusal'): 'I cannot check orders.'" in (
        finding.cause
    )
    assert finding.evidence["stop_reason"] == "refusal"


async def test_tool_errors_name_the_call_the_tool_and_the_error(app: App) -> None:
    script = [
        {
            "tool_calls": [
                {"name": "json_extract", "arguments": {"document": "{{event}}", "path": "a.b"}}
            ]
        },
        "Done.",
    ]
    await make_agent(app, script)
    explained = await fire_and_explain(app, payload={"a": {"c": 1}})
    finding = only(explained, "tool_errors")
    assert finding.cause.startswith("1 tool call returned an error: json_extract (call call_0_0)")
    assert "path 'a.b' has no 'b'" in finding.cause
    call = finding.evidence["tool_calls"][0]
    assert (call["call_id"], call["name"]) == ("call_0_0", "json_extract")
    assert call["error"] == "path 'a.b' has no 'b'"
    assert call["arguments"]["path"] == "a.b"
    assert isinstance(call["tool_result_seq"], int)
    assert "cairn agent tools support" in finding.fix
    assert "acted" not in explained.codes()


async def test_a_call_to_a_tool_the_allowlist_filtered_out_says_how_to_allow_it(
    app: App,
) -> None:
    script = [{"tool_calls": [{"name": "json_extract", "arguments": {}}]}, "Done."]
    await make_agent(app, script, tool_allowlist=["clock_now"])
    explained = await fire_and_explain(app)
    finding = only(explained, "unadvertised_tool_call")
    assert "called 'json_extract' (call call_0_0), a real tool that the allowlist filtered out" in (
        finding.cause
    )
    assert (
        """cairn agent update support --tool-allowlist '["clock_now", "json_extract"]'"""
        in finding.fix
    )
    assert finding.evidence["tool_names_advertised"] == ["clock_now"]
    assert "json_extract" in finding.evidence["allowlist_filtered_out"]
    assert "was not advertised" in finding.evidence["tool_call"]["error"]


async def test_a_call_to_an_invented_tool_suggests_the_closest_real_ones(app: App) -> None:
    script = [{"tool_calls": [{"name": "json_extrakt", "arguments": {}}]}, "Done."]
    await make_agent(app, script)
    explained = await fire_and_explain(app)
    finding = only(explained, "unadvertised_tool_call")
    assert "which no source provides" in finding.cause
    assert finding.evidence["suggestions"][0] == "json_extract"
    assert "The closest real tools are json_extract" in finding.fix


async def test_a_model_auth_error_says_which_key_to_set(app: App) -> None:
    await make_agent(app, _error("invalid x-api-key", "auth"))
    explained = await fire_and_explain(app)
    finding = only(explained, "model_auth")
    assert finding.cause == (
        "The model backend 'scripted' refused the credentials: invalid x-api-key."
    )
    assert "Set a valid API key for scripted" in finding.fix
    assert finding.evidence["error_type"] == "model_error"
    assert finding.evidence["reason"] == "auth"
    assert finding.evidence["error_message"] == "invalid x-api-key"
    assert explained.summary.startswith(f"Run {explained.subject} of support (failed, ")


async def test_a_rate_limit_that_outlasted_the_retries_cites_the_retry_events(app: App) -> None:
    app.runner.retry_base_s = 0.001  # the runner's backoff, shortened for the test
    await make_agent(app, _error("slow down", "rate_limited", retryable=True))
    explained = await fire_and_explain(app)
    finding = only(explained, "model_rate_limited")
    assert "rate-limited the model calls after 3 retries" in finding.cause
    assert finding.evidence["reason"] == "rate_limited"
    assert [r["attempt"] for r in finding.evidence["retry_events"]] == [1, 2, 3]
    assert all(r["reason"] == "rate_limited" for r in finding.evidence["retry_events"])
    assert "raise the account's rate limits" in finding.fix


async def test_a_retried_but_successful_model_call_is_noted(app: App) -> None:
    app.runner.retry_base_s = 0.001
    script = [
        {
            "text": "Fine.",
            "error": {"message": "busy", "reason": "server_error", "retryable": True, "times": 1},
        }
    ]
    await make_agent(app, script, tool_sources=[])
    explained = await fire_and_explain(app)
    finding = only(explained, "model_retried")
    assert finding.severity == "info"
    assert "retried 1 time (server_error)" in finding.cause


async def test_a_context_length_error_says_to_shorten_the_request(app: App) -> None:
    message = "prompt is too long: 210000 tokens > 200000 maximum"
    await make_agent(app, _error(message, "context_too_long"))
    explained = await fire_and_explain(app)
    finding = only(explained, "model_context_too_long")
    assert "longer than model 'scripted-1' accepts" in finding.cause
    assert message in finding.cause
    assert "Shorten the system prompt or the event payload" in finding.fix
    assert "cairn agent update support --model <model>" in finding.fix
    assert finding.evidence["reason"] == "context_too_long"


async def test_max_turns_names_the_looping_tool(app: App) -> None:
    script = {"turns": [{"tool_calls": [{"name": "clock_now"}]}], "then": "repeat_last"}
    await make_agent(app, script, max_turns=3)
    explained = await fire_and_explain(app)
    finding = only(explained, "max_turns")
    assert finding.cause == (
        "The model still asked for tools after max_turns=3 turns (3 tool calls: clock_now x3)."
    )
    assert "It kept calling clock_now: tell the system prompt when to stop" in finding.fix
    assert "cairn agent update support --max-turns 6" in finding.fix
    assert finding.evidence["error_type"] == "max_turns_exceeded"
    assert finding.evidence["tool_call_counts"] == {"clock_now": 3}


async def test_a_timeout_waiting_for_the_model_says_where_it_was(app: App) -> None:
    await make_agent(app, [{"text": "late", "delay_s": 5}], timeout_s=0.2)
    explained = await fire_and_explain(app)
    finding = only(explained, "timeout")
    assert finding.cause == "The run hit its timeout_s=0.2 s while waiting for the model."
    assert "cairn agent update support --timeout-s 0.4" in finding.fix
    assert finding.evidence["timeout_s"] == 0.2
    assert finding.evidence["error_type"] == "timeout"


async def test_a_timeout_in_a_hung_tool_call_names_the_call_and_its_server(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    script = [{"tool_calls": [{"name": "orders_slow", "arguments": {"seconds": 30}}]}]
    await make_agent(app, script, tool_sources=["orders"], timeout_s=1.0)
    explained = await fire_and_explain(app)
    finding = only(explained, "timeout")
    assert "while tool 'orders_slow' (call call_0_0) was still running after" in finding.cause
    assert "cairn source test orders" in finding.fix
    hung = finding.evidence["hung_call"]
    assert (hung["call_id"], hung["name"]) == ("call_0_0", "orders_slow")
    assert hung["arguments"] == {"seconds": 30}
    assert hung["error"].startswith("interrupted")
    assert isinstance(hung["tool_call_seq"], int)
    assert "tool_errors" not in explained.codes()  # the cut-off call is the timeout's


async def test_a_cancelled_run_says_when_and_how_to_run_it_again(app: App) -> None:
    script = [{"tool_calls": [{"name": "clock_now"}]}, {"text": "late", "delay_s": 30}]
    await make_agent(app, script)
    agent = get_agent(app, SANDBOX, "support")
    accepted = app.runner.accept(agent, {}, kind="test")
    finished: list[Run] = []

    async def execute() -> None:
        finished.append(await app.runner.execute(accepted, agent, available_sources(app, SANDBOX)))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(execute)
            await anyio.wait_all_tasks_blocked()  # the run now waits on the slow turn
            assert app.runner.cancel(accepted.run_id)
    assert finished[0].status == "cancelled"
    explained = explain_run(app, SANDBOX, accepted.run_id)
    finding = only(explained, "cancelled")
    assert finding.cause == (
        "The run was cancelled while waiting for the model, before it finished."
    )
    assert f"cairn runs replay {accepted.run_id}" in finding.fix
    assert finding.evidence["status"] == "cancelled"
    assert explained.codes()[0] == "cancelled"


async def test_a_run_that_acted_says_which_tools_it_called(app: App) -> None:
    script = [
        {
            "tool_calls": [
                {"name": "clock_now"},
                {"name": "regex_find", "arguments": {"text": "a1", "pattern": "\\d"}},
            ]
        },
        "Done.",
    ]
    await make_agent(app, script)
    explained = await fire_and_explain(app)
    assert explained.codes() == ["acted"]
    finding = explained.findings[0]
    assert finding.cause == (
        "It acted: it called clock_now and regex_find (2 calls, all returned results)."
    )
    assert finding.evidence["outcome"] == "acted"
    assert explained.summary.endswith(finding.cause)


async def test_explain_is_deterministic(app: App) -> None:
    await make_agent(app, [{"text": ""}])
    run = await fire(app)
    first = explain_run(app, SANDBOX, run.run_id).to_dict()
    assert explain_run(app, SANDBOX, run.run_id).to_dict() == first


async def test_a_live_run_says_it_is_still_running(app: App) -> None:
    await make_agent(app, "hi")
    accepted = app.runner.accept(get_agent(app, SANDBOX, "support"), {}, kind="test")
    explained = explain_run(app, SANDBOX, accepted.run_id)
    assert explained.codes() == ["run_live"]
    assert "the run is still running" in explained.findings[0].cause
    assert f"cairn runs follow {accepted.run_id}" in explained.findings[0].fix


async def test_a_run_whose_worker_died_says_so(app: App) -> None:
    await make_agent(app, "hi")
    accepted = app.runner.accept(get_agent(app, SANDBOX, "support"), {}, kind="test")
    with app.store.begin() as conn:  # what the server does at start for a run left live
        reap_stale_runs(conn, stale_after_s=0)
    finding = only(explain_run(app, SANDBOX, accepted.run_id), "worker_lost")
    assert "stopped sending heartbeats" in finding.cause
    assert f"cairn runs replay {accepted.run_id}" in finding.fix
    assert finding.evidence["error_type"] == "worker_lost"
