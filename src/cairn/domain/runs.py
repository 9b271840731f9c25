"""Runs: the ledger rows, their tool calls, their events, and the outcome vocabulary.

``status`` says whether the run machinery finished; ``outcome`` says what the agent
actually did, so a run that "succeeded" without touching a tool cannot hide:

=====================  ==============================================================
outcome                meaning
=====================  ==============================================================
``acted``              called one or more tools, and every call returned a result
``tool_errors``        called tools and at least one call errored (or was unadvertised)
``answered``           tools were advertised, the model replied with text only
``model_chose_no_tool`` tools were advertised; the model made no call and said nothing
``no_tools_available`` nothing was advertised (no sources, all skipped, or all filtered)
``interrupted``        the run failed or was cancelled before it called any tool
=====================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from cairn.domain.trace import ToolResolutionTrace
from cairn.text import from_record, record

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RunKind = Literal["trigger", "manual", "test", "oneshot"]
RunOutcome = Literal[
    "acted",
    "tool_errors",
    "answered",
    "model_chose_no_tool",
    "no_tools_available",
    "interrupted",
]
RunEventKind = Literal["text", "tool_call", "tool_result", "retry", "finish", "error"]
ToolErrorKind = Literal[
    "not_advertised",
    "interrupted",
    "raised",
    "tool_error",
    "bad_arguments",
    "host_not_allowed",
    "server_lost",
    "not_connected",
    "rate_capped",
    "refused",
]
"""Why a tool call errored, recorded by the runner and the tool sources so that diagnosis
reads a field rather than the message's wording:

====================  ===================================================================
``not_advertised``    the model called a tool it was not offered; nothing ran
``interrupted``       the run's deadline or a cancel cut the call off
``raised``            the tool raised (a crash: it ends the run)
``tool_error``        the tool ran and reported an error result
``bad_arguments``     the arguments were refused before or by the tool
``host_not_allowed``  ``http_request`` to a host outside ``CAIRN_HTTP_ALLOWED_HOSTS``
``server_lost``       the MCP server's connection failed during the call
``not_connected``     the source was not connected when called
``rate_capped``       the source's calls-per-minute cap refused the call
``refused``           the tool refused the caller (a missing grant or role)
====================  ===================================================================
"""
TOOL_ERROR_KINDS: tuple[ToolErrorKind, ...] = get_args(ToolErrorKind)

LIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running")
FINAL_STATUSES: tuple[RunStatus, ...] = ("succeeded", "failed", "cancelled")
RUN_KINDS: tuple[RunKind, ...] = ("trigger", "manual", "test", "oneshot")
RUN_STATUSES: tuple[RunStatus, ...] = LIVE_STATUSES + FINAL_STATUSES
NO_OP_OUTCOMES: tuple[RunOutcome, ...] = ("answered", "model_chose_no_tool", "no_tools_available")
"""A run that succeeded with one of these did nothing (no tool ran): the silent no-op."""


@dataclass(slots=True)
class ToolCall:
    """One tool call as the ledger keeps it: what was asked, what came back, how long."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    error_kind: ToolErrorKind | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored and displayed form."""
        return record(self) | {"duration_ms": round(self.duration_ms, 3)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        """Inverse of ``to_dict``."""
        return cls(
            call_id=data["call_id"],
            name=data["name"],
            arguments=data.get("arguments") or {},
            result=data.get("result"),
            error=data.get("error"),
            duration_ms=float(data.get("duration_ms") or 0.0),
            error_kind=_error_kind(data.get("error_kind")),
        )


def _error_kind(value: Any) -> ToolErrorKind | None:
    """A stored kind, or ``None`` for calls recorded before kinds were (or an unknown one)."""
    for kind in TOOL_ERROR_KINDS:
        if value == kind:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run's live stream, numbered from 1 within the run."""

    seq: int
    kind: RunEventKind
    data: dict[str, Any]
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored and displayed form."""
        return record(self)


@dataclass(slots=True)
class Usage:
    """Token usage. ``tokens_in`` counts every prompt token once, cached or not;
    ``cache_read_tokens`` / ``cache_write_tokens`` repeat the cached share apart
    (docs/ledger.md)."""

    tokens_in: int = 0
    tokens_out: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, other: Usage) -> None:
        """Accumulate another turn's usage into this one."""
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens


@dataclass(slots=True)
class Run:
    """A run row. Built by the runner, persisted by the store, shown by the CLI."""

    run_id: str
    sandbox_id: str
    agent_id: str
    agent_slug: str
    agent_version: int
    kind: RunKind
    status: RunStatus
    event_payload: Any
    trigger_id: str | None = None
    outcome: RunOutcome | None = None
    output_text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_micros: int | None = None
    duration_ms: float | None = None
    error_message: str | None = None
    error_type: str | None = None
    tool_resolution_trace: ToolResolutionTrace | None = None
    model: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    replay_of: str | None = None
    traceparent: str | None = None  # the caller's W3C trace context, for exported traces

    def to_dict(self) -> dict[str, Any]:
        """The full row in its JSON form (``cairn runs show --json``): the usage's
        counts as fields of their own."""
        trace = self.tool_resolution_trace
        return (
            record(self, "usage")
            | {
                "tool_calls": [call.to_dict() for call in self.tool_calls],
                "tool_resolution_trace": trace.to_dict() if trace else None,
            }
            | record(self.usage)
        )


def decide_outcome(
    *, status: RunStatus, advertised: int, tool_calls: list[ToolCall], output_text: str
) -> RunOutcome:
    """Name what a finished run did (see the module table). Pure, so tests pin each case."""
    if tool_calls:
        return "tool_errors" if any(call.error for call in tool_calls) else "acted"
    if status != "succeeded":
        return "interrupted"
    if advertised == 0:
        return "no_tools_available"
    return "answered" if output_text.strip() else "model_chose_no_tool"


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What a run listing selects. Ids bound the window: ``before`` is the pagination cursor
    (exclusive), ``since``/``until`` are epoch seconds turned into id bounds by the store."""

    sandbox_id: str
    agent_id: str | None = None
    status: RunStatus | None = None
    trigger_id: str | None = None
    kind: RunKind | None = None
    before: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 20


def run_from_dict(data: dict[str, Any]) -> Run:
    """Inverse of ``Run.to_dict`` (for clients rendering what the API returned)."""
    trace = data.get("tool_resolution_trace")
    return from_record(
        Run,
        data,
        output_text=data.get("output_text") or "",
        tool_calls=[ToolCall.from_dict(c) for c in data.get("tool_calls") or []],
        usage=Usage(
            data.get("tokens_in", 0),
            data.get("tokens_out", 0),
            data.get("cache_read_tokens", 0),
            data.get("cache_write_tokens", 0),
        ),
        tool_resolution_trace=ToolResolutionTrace.from_dict(trace) if trace else None,
    )


def event_from_dict(data: dict[str, Any]) -> RunEvent:
    """Inverse of ``RunEvent.to_dict``."""
    return from_record(RunEvent, data)
