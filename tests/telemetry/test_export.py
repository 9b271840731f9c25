"""Runs exported as GenAI traces to a real OTLP/HTTP receiver on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cairn.domain.runs import Run
from cairn.services.app import App
from cairn.services.runs import fire_agent
from cairn.telemetry import export_status
from cairn.telemetry.otlp import OtlpExport
from tests.cli.conftest import Cli
from tests.runner.helpers import BUILTIN_NAMES, SANDBOX, add_source, make_agent, stored
from tests.telemetry.receiver import Receiver, Span

PAYLOAD = {"order": {"id": "A-1", "items": ["Lamp", "Desk"]}, "api_key": "sk-live-123"}


def extract(path: str) -> dict[str, Any]:
    return {"name": "json_extract", "arguments": {"document": "{{event}}", "path": path}}


TWO_CALLS = {
    "turns": [
        {"text": "Looking. ", "tool_calls": [extract("order.id")]},
        {"text": "And the item. ", "tool_calls": [extract("order.items.0")]},
        {"text": "Order {{results.0}} holds a {{results.1}}."},
    ]
}


def exporter(app: App) -> OtlpExport:
    observer = app.runner.observer
    assert isinstance(observer, OtlpExport)
    return observer


def exported(app: App, receiver: Receiver, run: Run) -> dict[str, Span | list[Span]]:
    """The run's spans as the receiver got them: ``root``, ``resolve``, ``chat`` and
    ``tools`` (in start order)."""
    assert exporter(app).flush(20.0)
    roots = [s for s in receiver.received.spans if s.attributes.get("cairn.run.id") == run.run_id]
    assert len(roots) == 1, f"one root span for {run.run_id}, got {len(roots)}"
    spans = sorted(receiver.spans_of_trace(roots[0].trace_id), key=lambda s: s.start_ns)
    return {
        "root": roots[0],
        "all": spans,
        "resolve": [s for s in spans if s.name == "cairn.resolve_tools"],
        "chat": [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"],
        "tools": [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"],
    }


def only(spans: Span | list[Span]) -> Span:
    assert isinstance(spans, list) and len(spans) == 1
    return spans[0]


def many(spans: Span | list[Span]) -> list[Span]:
    assert isinstance(spans, list)
    return spans


@pytest.mark.anyio
async def test_a_run_with_two_tool_calls_is_one_genai_trace(export_on: Receiver, app: App) -> None:
    agent = await make_agent(app, TWO_CALLS, slug="orders", tool_allowlist=["json_extract"])
    fired = await fire_agent(app, SANDBOX, "orders", PAYLOAD)
    run, _events = stored(app, fired.run_id)
    got = exported(app, export_on, run)

    root = got["root"]
    assert isinstance(root, Span)
    assert root.name == "invoke_agent orders"
    assert (root.parent_span_id, root.kind, root.status) == ("", "internal", "unset")
    assert root.resource["service.name"] == "cairn"
    assert root.attributes == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "orders",
        "gen_ai.agent.id": agent.agent_id,
        "gen_ai.agent.version": "1",
        "gen_ai.provider.name": "cairn.scripted",
        "gen_ai.request.model": "scripted-1",
        "gen_ai.usage.input_tokens": run.usage.tokens_in,
        "gen_ai.usage.output_tokens": run.usage.tokens_out,
        "cairn.run.id": run.run_id,
        "cairn.run.kind": "test",
        "cairn.run.status": "succeeded",
        "cairn.run.outcome": "acted",
        "cairn.run.cost_micros": 0,
        "cairn.run.queue_wait_ms": root.attributes["cairn.run.queue_wait_ms"],
        "cairn.sandbox.id": SANDBOX,
        "cairn.agent.version": 1,
    }

    resolve = only(got["resolve"])
    assert resolve.attributes["cairn.tools.sources_resolved"] == ["builtin"]
    assert resolve.attributes["cairn.tools.advertised"] == ["json_extract"]
    assert resolve.attributes["cairn.tools.advertised.count"] == 1
    assert resolve.attributes["cairn.tools.allowlist_filtered_out"] == [
        n for n in BUILTIN_NAMES if n != "json_extract"
    ]
    assert resolve.attributes["cairn.tools.allowlist_missing_entries"] == []
    assert resolve.attributes["cairn.tools.sources_skipped"] == []
    assert resolve.events == [
        (
            "cairn.source.resolved",
            {
                "cairn.source.id": "builtin",
                "cairn.source.kind": "builtin",
                "cairn.source.label": "builtin",
                "cairn.source.tool_count": 4,
            },
        )
    ]

    chats, tools = many(got["chat"]), many(got["tools"])
    assert [c.name for c in chats] == ["chat scripted-1"] * 3
    assert [c.kind for c in chats] == ["client"] * 3
    assert [c.attributes["gen_ai.response.model"] for c in chats] == ["scripted-1"] * 3
    assert [c.attributes["cairn.turn"] for c in chats] == [0, 1, 2]
    assert [c.attributes["gen_ai.response.finish_reasons"] for c in chats] == [
        ["tool_use"],
        ["tool_use"],
        ["end_turn"],
    ]
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == run.usage.tokens_in
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in chats) == run.usage.tokens_out
    assert [t.name for t in tools] == ["execute_tool json_extract"] * 2
    assert [t.attributes["gen_ai.tool.call.id"] for t in tools] == ["call_0_0", "call_1_0"]
    assert all(t.status == "unset" and t.kind == "internal" for t in tools)

    # The tree: one root, everything else its child, in the order things happened.
    spans = many(got["all"])
    assert len(spans) == 7
    assert {s.trace_id for s in spans} == {root.trace_id}
    assert all(s.parent_span_id == root.span_id for s in spans if s is not root)
    assert len({s.span_id for s in spans}) == 7
    order = [s.name for s in spans if s.name.startswith(("chat", "execute_tool"))]
    assert order == [
        "chat scripted-1",
        "execute_tool json_extract",
        "chat scripted-1",
        "execute_tool json_extract",
        "chat scripted-1",
    ]
    assert all(root.start_ns <= s.start_ns <= s.end_ns <= root.end_ns for s in spans)
    # Contents are opt-in: none of the payload, arguments or answers went out.
    assert not any(
        key in s.attributes
        for s in spans
        for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments")
    )
    assert "A-1" not in repr(spans) and "sk-live" not in repr(spans)


@pytest.mark.anyio
async def test_a_failed_run_marks_the_failing_turn_and_the_root_as_errors(
    export_on: Receiver, app: App
) -> None:
    script = {
        "turns": [
            {
                "error": {
                    "message": "busy",
                    "reason": "rate_limited",
                    "retryable": True,
                    "times": 1,
                },
                "tool_calls": [{"name": "clock_now", "arguments": {}}],
            },
            {"error": "the vendor fell over"},
        ]
    }
    await make_agent(app, script, slug="flaky", tool_allowlist=["json_extract"])
    app.runner.retry_base_s = 0.01
    fired = await fire_agent(app, SANDBOX, "flaky", PAYLOAD)
    run, _events = stored(app, fired.run_id)
    assert (run.status, run.error_type) == ("failed", "model_error")
    got = exported(app, export_on, run)

    root = got["root"]
    assert isinstance(root, Span)
    assert root.status == "error"
    assert root.status_message == run.error_message
    assert root.attributes["error.type"] == "model_error"
    assert root.attributes["cairn.run.status"] == "failed"
    assert root.attributes["cairn.run.outcome"] == "tool_errors"

    first, second = many(got["chat"])
    assert first.status == "unset"
    assert first.events == [
        (
            "cairn.model.retry",
            {
                "cairn.retry.attempt": 1,
                "cairn.retry.wait_s": 0.01,
                "cairn.retry.reason": "rate_limited",
                "error.type": "rate_limited",
            },
        )
    ]
    assert second.status == "error"
    assert second.attributes["error.type"] == "model_error"
    assert "gen_ai.response.finish_reasons" not in second.attributes

    # clock_now was not advertised (the allowlist says json_extract): an error, not a crash.
    tool = only(got["tools"])
    assert tool.name == "execute_tool clock_now"
    assert (tool.status, tool.attributes["error.type"]) == ("error", "tool_not_advertised")
    assert tool.status_message == ""  # the error text is content: opt-in


@pytest.mark.anyio
async def test_a_skipped_source_is_on_the_resolution_span_with_its_reason(
    export_on: Receiver, app: App
) -> None:
    down = add_source(app, ["lookup"], label="crm", behaviour="refuse")
    await make_agent(
        app,
        "Nothing to do.",
        slug="lonely",
        tool_sources=[down.source_id],
        tool_allowlist=["crm_lookup"],
    )
    fired = await fire_agent(app, SANDBOX, "lonely", PAYLOAD)
    run, _events = stored(app, fired.run_id)
    got = exported(app, export_on, run)

    resolve = only(got["resolve"])
    assert resolve.attributes["cairn.tools.sources_resolved"] == []
    assert resolve.attributes["cairn.tools.sources_skipped"] == ["crm"]
    assert resolve.attributes["cairn.tools.sources_skipped.reasons"] == ["auth_refused"]
    assert resolve.attributes["cairn.tools.advertised"] == []
    assert resolve.attributes["cairn.tools.allowlist_missing_entries"] == ["crm_lookup"]
    ((name, attributes),) = resolve.events
    assert name == "cairn.source.skipped"
    assert attributes["cairn.source.skip_reason"] == "auth_refused"
    assert attributes["cairn.source.id"] == down.source_id
    assert "403" in attributes["cairn.source.skip_message"]
    root = got["root"]
    assert isinstance(root, Span)
    assert root.attributes["cairn.run.outcome"] == "no_tools_available"
    assert resolve.start_ns >= root.start_ns and resolve.end_ns <= root.end_ns

    # The metrics of the same run: a skipped source by reason, the run by outcome.
    assert exporter(app).flush(20.0)
    metrics = export_on.received.metrics
    skipped = metrics["cairn.tools.sources_skipped"][-1].sum.data_points
    assert [
        (p.as_int, {kv.key: kv.value.string_value for kv in p.attributes}) for p in skipped
    ] == [
        (
            1,
            {
                "gen_ai.agent.name": "lonely",
                "cairn.source.kind": "test_runner_fake",
                "cairn.source.skip_reason": "auth_refused",
            },
        )
    ]
    for name in (
        "cairn.runs",
        "cairn.run.duration",
        "cairn.run.queue_wait",
        "cairn.tools.resolution.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
    ):
        assert name in metrics, f"{name} was not exported"
    usage = metrics["gen_ai.client.token.usage"][-1]
    assert usage.unit == "{token}"
    assert {
        kv.value.string_value
        for p in usage.histogram.data_points
        for kv in p.attributes
        if kv.key == "gen_ai.token.type"
    } == {"input", "output"}


@pytest.mark.anyio
async def test_message_contents_go_out_only_when_opted_in_and_without_secrets(
    export_on: Receiver, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    await make_agent(app, TWO_CALLS, slug="orders", tool_allowlist=["json_extract"])
    fired = await fire_agent(app, SANDBOX, "orders", PAYLOAD)
    run, _events = stored(app, fired.run_id)
    got = exported(app, export_on, run)

    chats, tools = many(got["chat"]), many(got["tools"])
    first_input = json.loads(chats[0].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in first_input] == ["user"]
    sent = first_input[0]["parts"][0]["content"]
    assert "A-1" in sent and "sk-live-123" not in sent and "[redacted]" in sent
    last_input = json.loads(chats[2].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in last_input] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last_input[2]["parts"] == [
        {"type": "tool_call_response", "id": "call_0_0", "response": "A-1"}
    ]
    output = json.loads(chats[2].attributes["gen_ai.output.messages"])
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": run.output_text}],
            "finish_reason": "end_turn",
        }
    ]
    assert json.loads(tools[1].attributes["gen_ai.tool.call.result"]) == "Lamp"
    arguments = json.loads(tools[0].attributes["gen_ai.tool.call.arguments"])
    assert arguments["path"] == "order.id"
    assert "sk-live-123" not in json.dumps(arguments)
    assert all("sk-live-123" not in repr(s.attributes) for s in many(got["all"]))


@pytest.mark.anyio
async def test_dropped_exports_are_counted_when_the_collector_goes_down(
    export_on: Receiver, app: App, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    await make_agent(app, TWO_CALLS, slug="orders", tool_allowlist=["json_extract"])
    before = [await fire_agent(app, SANDBOX, "orders", PAYLOAD) for _ in range(5)]
    export = exporter(app)
    assert export.flush(20.0)
    assert export.stats.runs_exported == 5
    export_on.stop()

    after = [await fire_agent(app, SANDBOX, "orders", PAYLOAD) for _ in range(40)]

    # Every run finished and was written; none waited for the dead collector (the queue
    # is 8 runs long, and the worker spends up to a second on each failed export).
    assert all(run.status == "succeeded" for run in before + after)
    assert export.flush(30.0)
    stats = export.stats
    assert stats.runs_exported == 5
    assert stats.runs_dropped == 40
    assert stats.spans_dropped > 0
    assert stats.last_failure_at is not None
    assert len(export_on.received.spans) == 5 * 7
    status = export_status()
    assert status["enabled"] is True
    assert status["endpoint"] == f"{export_on.url}/v1/traces"
    assert (status["runs_exported"], status["runs_dropped"]) == (5, 40)
    shown = cli("status")
    assert shown.exit_code == 0, shown.stderr
    assert f"OpenTelemetry export: on, traces and metrics to {export_on.url}/v1/traces" in (
        shown.stdout
    )
    assert "sent: 5 runs (35 spans); dropped: 40 runs" in shown.stdout


@pytest.mark.anyio
async def test_a_callers_traceparent_puts_the_run_under_the_callers_span(
    export_on: Receiver, app: App
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    await make_agent(app, TWO_CALLS, slug="orders", tool_allowlist=["json_extract"])
    fired = await fire_agent(
        app, SANDBOX, "orders", PAYLOAD, traceparent=f"00-{caller_trace}-{caller_span}-01"
    )
    run, _events = stored(app, fired.run_id)
    assert run.traceparent == f"00-{caller_trace}-{caller_span}-01"
    got = exported(app, export_on, run)

    root = got["root"]
    assert isinstance(root, Span)
    assert (root.trace_id, root.parent_span_id) == (caller_trace, caller_span)
    assert len(many(got["all"])) == 7


@pytest.mark.anyio
async def test_a_tool_that_raises_is_an_error_span_carrying_the_runs_failure(
    export_on: Receiver, app: App
) -> None:
    crashing = add_source(app, ["explode"], label="disk")
    script = {"turns": [{"tool_calls": [{"name": "explode", "arguments": {}}]}, "Never."]}
    await make_agent(app, script, slug="crashy", tool_sources=[crashing.source_id])
    fired = await fire_agent(app, SANDBOX, "crashy", PAYLOAD)
    run, _events = stored(app, fired.run_id)
    assert (run.status, run.error_type) == ("failed", "tool_failure")
    got = exported(app, export_on, run)

    tool = only(got["tools"])
    assert tool.name == "execute_tool explode"
    assert (tool.status, tool.attributes["error.type"]) == ("error", "tool_failure")
    root = got["root"]
    assert isinstance(root, Span)
    assert (root.status, root.attributes["error.type"]) == ("error", "tool_failure")
    assert root.status_message == run.error_message
