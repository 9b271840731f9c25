"""A finished run as a tree of GenAI spans, built from its ledger row and its events.

The same plan serves the live export (built when a run finishes) and the backfill from
the ledger (``cairn export otlp``), because it reads only what the ledger keeps: the row,
the tool-resolution trace, the events and the ``turns`` of the final event. Pure data, no
OpenTelemetry import: ``cairn.telemetry.otlp`` turns a plan into SDK spans.

The tree::

    invoke_agent {agent}            the run (status, error.type, cairn.run.*)
    ├── cairn.resolve_tools         the tool-resolution trace as attributes and events
    ├── chat {model}                one per model turn (usage, finish reason, retries)
    ├── execute_tool {tool}         one per tool call, after the turn that asked for it
    └── chat {model}                …

Ids are derived from the run id (the trace id too, unless the caller sent a
``traceparent``), so exporting a run twice gives the same ids rather than a second trace.
Message contents (``gen_ai.input.messages``, tool arguments and results) are added only
when asked for, with secret-looking fields masked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cairn.domain.runs import Run, RunEvent, ToolCall
from cairn.runner.messages import render_event_message
from cairn.telemetry import semconv as sc
from cairn.telemetry.context import RemoteParent, parse_traceparent

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float]
Attributes = dict[str, AttributeValue]
SpanKind = Literal["internal", "client"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECRET_KEY = re.compile(
    r"(authorization|api[-_]?key|token|secret|password|passwd|cookie|credential|private[-_]?key)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


@dataclass(slots=True)
class PlannedEvent:
    """A span event: a point in time with attributes."""

    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class PlannedSpan:
    """One span of a run. ``key`` names it within the run (its id derives from it);
    ``parent`` is the parent's key, ``None`` for the root."""

    key: str
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    parent: str | None
    attributes: Attributes
    events: list[PlannedEvent] = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    span_id: int = 0  # derived from the run id and ``key`` once the tree is laid out


@dataclass(slots=True)
class RunTrace:
    """The spans of one run, parents before children, and where the trace hangs."""

    run: Run
    trace_id: int
    remote_parent: RemoteParent | None
    spans: list[PlannedSpan]

    def by_operation(self, operation: str) -> list[PlannedSpan]:
        """The spans whose ``gen_ai.operation.name`` is ``operation``, in order."""
        return [s for s in self.spans if s.attributes.get(sc.OPERATION_NAME) == operation]


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, in integers (a float timestamp loses microseconds)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1000


def _iso_ns(value: str | None, default: int) -> int:
    return _ns(datetime.fromisoformat(value)) if value else default


def _hash_id(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big")
    return value or 1


def provider_and_model(run: Run) -> tuple[str, str]:
    """``gen_ai.provider.name`` and ``gen_ai.request.model`` from the row's ``backend:model``."""
    backend, _, model = (run.model or "").partition(":")
    return sc.PROVIDERS.get(backend, backend or "unknown"), model or "unknown"


def redact(value: Any) -> Any:
    """``value`` with every field whose name looks like a credential replaced by
    ``[redacted]``, recursively: contents are opt-in, and even then never carry secrets."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(redact(value), ensure_ascii=False, default=str, sort_keys=True)


@dataclass(slots=True)
class _Turn:
    record: dict[str, Any]
    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    retries: list[RunEvent] = field(default_factory=list)


class _Builder:
    """Reads a run's row and events once and lays out its spans."""

    def __init__(self, run: Run, events: Sequence[RunEvent], capture_content: bool) -> None:
        self.run = run
        self.events = events
        self.capture = capture_content
        self.provider, self.model = provider_and_model(run)
        start = run.started_at or run.created_at or datetime.now(UTC)
        self.start_ns = _ns(start)
        end = run.finished_at or run.heartbeat_at or start
        self.end_ns = max(_ns(end), self.start_ns)
        self.calls: dict[str, ToolCall] = {call.call_id: call for call in run.tool_calls}
        self.call_events: dict[str, RunEvent] = {}
        self.result_events: dict[str, RunEvent] = {}
        self.turns: list[_Turn] = []
        self._read_events()

    def _read_events(self) -> None:
        final = next((e for e in reversed(self.events) if e.kind in ("finish", "error")), None)
        records = final.data.get("turns") if final is not None else None
        by_number = {r["turn"]: _Turn(r) for r in records or []}
        for event in self.events:
            data = event.data
            if event.kind == "text" and data.get("turn") in by_number:
                by_number[data["turn"]].text += data.get("delta", "")
            elif event.kind == "retry" and data.get("turn") in by_number:
                by_number[data["turn"]].retries.append(event)
            elif event.kind == "tool_call":
                self.call_events[data["call_id"]] = event
            elif event.kind == "tool_result":
                self.result_events[data["call_id"]] = event
        self.turns = [by_number[n] for n in sorted(by_number)]
        for turn in self.turns:
            for call_id in turn.record.get("tool_call_ids", ()):
                asked = self.call_events.get(call_id)
                if asked is not None:
                    turn.calls.append(asked.data)

    # --- the spans --------------------------------------------------------------------

    def build(self) -> RunTrace:
        parent = parse_traceparent(self.run.traceparent)
        trace_id = parent.trace_id if parent else _hash_id(f"cairn-trace/{self.run.run_id}", 16)
        spans = [self._root()]
        resolve = self._resolve()
        if resolve is not None:
            spans.append(resolve)
        body = [self._chat(turn) for turn in self.turns] + self._tools()
        spans.extend(sorted(body, key=lambda s: (s.start_ns, s.key)))
        for span in spans:
            span.span_id = _hash_id(f"{self.run.run_id}/{span.key}", 8)
        return RunTrace(self.run, trace_id, parent, spans)

    def _root(self) -> PlannedSpan:
        run = self.run
        attributes: Attributes = {
            sc.OPERATION_NAME: sc.INVOKE_AGENT,
            sc.AGENT_NAME: run.agent_slug,
            sc.AGENT_ID: run.agent_id,
            sc.AGENT_VERSION: str(run.agent_version),
            sc.PROVIDER_NAME: self.provider,
            sc.REQUEST_MODEL: self.model,
            sc.USAGE_INPUT_TOKENS: run.usage.tokens_in,
            sc.USAGE_OUTPUT_TOKENS: run.usage.tokens_out,
            sc.RUN_ID: run.run_id,
            sc.RUN_KIND: run.kind,
            sc.RUN_STATUS: run.status,
            sc.SANDBOX_ID: run.sandbox_id,
            sc.CAIRN_AGENT_VERSION: run.agent_version,
        }
        if run.usage.cache_read_tokens:
            attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] = run.usage.cache_read_tokens
        if run.usage.cache_write_tokens:
            attributes[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] = run.usage.cache_write_tokens
        optional: dict[str, AttributeValue | None] = {
            sc.RUN_OUTCOME: run.outcome,
            sc.TRIGGER_ID: run.trigger_id,
            sc.RUN_REPLAY_OF: run.replay_of,
            sc.RUN_COST_MICROS: run.cost_micros,
            sc.RUN_QUEUE_WAIT_MS: queue_wait_ms(run),
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span = PlannedSpan(
            "root",
            f"{sc.INVOKE_AGENT} {run.agent_slug}",
            "internal",
            self.start_ns,
            self.end_ns,
            None,
            attributes,
        )
        if run.status != "succeeded":
            span.error_type = run.error_type or run.status
            span.error_message = run.error_message
            attributes[sc.ERROR_TYPE] = span.error_type
        return span

    def _resolve(self) -> PlannedSpan | None:
        trace = self.run.tool_resolution_trace
        if trace is None:
            return None
        end = min(self.start_ns + round(trace.duration_ms * 1_000_000), self.end_ns)
        attributes: Attributes = {
            sc.SOURCES_RESOLVED: [s.label for s in trace.sources_resolved],
            sc.SOURCES_SKIPPED: [s.label for s in trace.sources_skipped],
            sc.SOURCES_SKIPPED_REASONS: [str(s.reason) for s in trace.sources_skipped],
            sc.ADVERTISED: list(trace.tool_names_advertised),
            sc.ADVERTISED_COUNT: len(trace.tool_names_advertised),
            sc.ALLOWLIST_FILTERED_OUT: list(trace.allowlist_filtered_out),
            sc.ALLOWLIST_MISSING_ENTRIES: [m.entry for m in trace.allowlist_missing_entries],
            sc.RESOLUTION_DURATION_MS: round(trace.duration_ms, 3),
        }
        resolved: list[tuple[str, Any, Attributes]] = [
            (sc.EVENT_SOURCE_RESOLVED, s, {sc.SOURCE_TOOL_COUNT: s.tool_count})
            for s in trace.sources_resolved
        ]
        skipped: list[tuple[str, Any, Attributes]] = [
            (sc.EVENT_SOURCE_SKIPPED, s, {sc.SKIP_REASON: s.reason, sc.SKIP_MESSAGE: s.message})
            for s in trace.sources_skipped
        ]
        events = [
            PlannedEvent(
                name,
                self.start_ns,
                {sc.SOURCE_ID: s.source_id, sc.SOURCE_KIND: s.kind, sc.SOURCE_LABEL: s.label}
                | extra,
            )
            for name, s, extra in resolved + skipped
        ]
        return PlannedSpan(
            "resolve", sc.RESOLVE_TOOLS, "internal", self.start_ns, end, "root", attributes, events
        )

    def _chat(self, turn: _Turn) -> PlannedSpan:
        record = turn.record
        number = int(record["turn"])
        attributes: Attributes = {
            sc.OPERATION_NAME: sc.CHAT,
            sc.PROVIDER_NAME: self.provider,
            sc.REQUEST_MODEL: self.model,
            sc.USAGE_INPUT_TOKENS: int(record.get("tokens_in", 0)),
            sc.USAGE_OUTPUT_TOKENS: int(record.get("tokens_out", 0)),
            sc.TURN: number,
        }
        if record.get("model"):
            attributes[sc.RESPONSE_MODEL] = str(record["model"])
        if record.get("stop_reason"):
            attributes[sc.RESPONSE_FINISH_REASONS] = [str(record["stop_reason"])]
        events = [
            PlannedEvent(
                sc.EVENT_RETRY,
                _ns(retry.created_at) if retry.created_at else self.start_ns,
                _retry_attributes(retry.data),
            )
            for retry in turn.retries
        ]
        span = PlannedSpan(
            f"chat/{number}",
            f"{sc.CHAT} {self.model}",
            "client",
            _iso_ns(record.get("started_at"), self.start_ns),
            _iso_ns(record.get("ended_at"), self.end_ns),
            "root",
            attributes,
            events,
        )
        error = record.get("error_type")
        if error:
            if error == "cancelled" and self.run.error_type:
                error = self.run.error_type  # our own deadline cancels the turn: a timeout
            span.error_type = str(error)
            span.error_message = self.run.error_message
            attributes[sc.ERROR_TYPE] = span.error_type
        if self.capture:
            attributes[sc.INPUT_MESSAGES] = _json(self._conversation_before(number))
            attributes[sc.OUTPUT_MESSAGES] = _json([_assistant(turn)])
        return span

    def _conversation_before(self, number: int) -> list[dict[str, Any]]:
        """The messages the model was sent on turn ``number`` (system prompt aside)."""
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "parts": [
                    {
                        "type": "text",
                        "content": render_event_message(redact(self.run.event_payload)),
                    }
                ],
            }
        ]
        for turn in self.turns:
            if int(turn.record["turn"]) >= number:
                break
            messages.append(_assistant(turn))
            responses = [
                {
                    "type": "tool_call_response",
                    "id": call["call_id"],
                    "response": self._result_of(call["call_id"]),
                }
                for call in turn.calls
            ]
            if responses:
                messages.append({"role": "tool", "parts": responses})
        return messages

    def _result_of(self, call_id: str) -> Any:
        call = self.calls.get(call_id)
        if call is None:
            return None
        return {"error": call.error} if call.error else call.result

    def _tools(self) -> list[PlannedSpan]:
        spans: list[PlannedSpan] = []
        last_turn_start = max(
            (_iso_ns(t.record.get("started_at"), 0) for t in self.turns), default=0
        )
        order = list(self.call_events)
        advertised = set(
            self.run.tool_resolution_trace.tool_names_advertised
            if self.run.tool_resolution_trace
            else ()
        )
        for index, call_id in enumerate(order):
            asked = self.call_events[call_id]
            call = self.calls.get(call_id)
            start = _ns(asked.created_at) if asked.created_at else self.start_ns
            answered = self.result_events.get(call_id)
            if answered is not None and answered.created_at is not None:
                end = _ns(answered.created_at)
            elif call is not None:
                end = start + round(call.duration_ms * 1_000_000)
            else:
                end = self.end_ns
            name = str(asked.data.get("name", ""))
            attributes: Attributes = {
                sc.OPERATION_NAME: sc.EXECUTE_TOOL,
                sc.TOOL_NAME: name,
                sc.TOOL_CALL_ID: call_id,
            }
            span = PlannedSpan(
                f"tool/{call_id}",
                f"{sc.EXECUTE_TOOL} {name}",
                "internal",
                start,
                max(end, start),
                "root",
                attributes,
            )
            error = call.error if call is not None else None
            # The run's failure belongs to this call when it was the last thing the run did:
            # the call raised, or the deadline or a cancel cut it off.
            cut_off = (
                index == len(order) - 1
                and self.run.status != "succeeded"
                and start >= last_turn_start
                and self.run.error_type in ("tool_failure", "timeout", "cancelled")
            )
            kind = call.error_kind if call is not None else None
            if kind in ("raised", "interrupted"):
                span.error_type = str(self.run.error_type or kind)
            elif kind == "not_advertised":
                span.error_type = "tool_not_advertised"
            elif kind is not None:
                span.error_type = kind  # tool_error, bad_arguments, host_not_allowed, …
            elif cut_off:  # rows written before calls carried their error kind
                span.error_type = str(self.run.error_type)
            elif error and name not in advertised:
                span.error_type = "tool_not_advertised"
            elif error or (call is not None and answered is None):
                span.error_type = "tool_error"
            if span.error_type is not None:
                attributes[sc.ERROR_TYPE] = span.error_type
                span.error_message = error if self.capture else None
            if self.capture:
                attributes[sc.TOOL_CALL_ARGUMENTS] = _json(asked.data.get("arguments"))
                if call is not None and not error:
                    attributes[sc.TOOL_CALL_RESULT] = _json(call.result)
            spans.append(span)
        return spans


def _assistant(turn: _Turn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if turn.text:
        parts.append({"type": "text", "content": turn.text})
    parts.extend(
        {"type": "tool_call", "id": c["call_id"], "name": c["name"], "arguments": c["arguments"]}
        for c in turn.calls
    )
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if turn.record.get("stop_reason"):
        message["finish_reason"] = turn.record["stop_reason"]
    return message


def _retry_attributes(data: dict[str, Any]) -> Attributes:
    attributes: Attributes = {
        sc.RETRY_ATTEMPT: int(data.get("attempt") or 0),
        sc.RETRY_WAIT_S: float(data.get("wait_s") or 0.0),
    }
    if data.get("reason"):
        attributes[sc.RETRY_REASON] = str(data["reason"])
        attributes[sc.ERROR_TYPE] = str(data["reason"])
    if data.get("status_code") is not None:
        attributes[sc.HTTP_STATUS_CODE] = int(data["status_code"])
    return attributes


def queue_wait_ms(run: Run) -> float | None:
    """How long the run waited between being accepted and starting."""
    if run.created_at is None or run.started_at is None:
        return None
    return max((run.started_at - run.created_at) / _MICROSECOND / 1000, 0.0)


def plan_run(run: Run, events: Sequence[RunEvent], *, capture_content: bool = False) -> RunTrace:
    """The spans of a finished run (see the module docstring)."""
    return _Builder(run, events, capture_content).build()
