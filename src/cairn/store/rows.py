"""Turning stored rows into domain objects, shared by both read paths (SQLAlchemy, and the
plain ``sqlite3`` reader of ``cairn.store.sqlite_reader``). Imports no database library."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from cairn.domain.runs import Run, ToolCall, Usage
from cairn.domain.trace import ToolResolutionTrace

T = TypeVar("T")


def row_record(kind: type[T], row: Any, **given: Any) -> T:
    """The dataclass ``kind`` from a row that has a column for each of its fields, but for
    ``given`` (fields stored otherwise, or decoded on the way)."""
    names = (item.name for item in fields(kind))  # type: ignore[arg-type]
    return kind(**{name: getattr(row, name) for name in names if name not in given}, **given)


def record_values(table: Any, item: Any, **given: Any) -> dict[str, Any]:
    """The inverse of ``row_record``: the values of ``table``'s columns from the dataclass
    ``item``, each column that one of its fields names, then ``given`` (columns stored
    otherwise, or encoded on the way)."""
    names = {field.name for field in fields(item)}
    columns = (column.name for column in table.columns)
    return {name: getattr(item, name) for name in columns if name in names} | given


RUN_COLUMNS = (
    "run_id",
    "sandbox_id",
    "agent_id",
    "agent_slug",
    "agent_version",
    "trigger_id",
    "kind",
    "status",
    "outcome",
    "model",
    "event_payload",
    "output_text",
    "tool_calls",
    "tokens_in",
    "tokens_out",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "duration_ms",
    "error_message",
    "error_type",
    "tool_resolution_trace",
    "created_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "cancel_requested_at",
    "replay_of",
    "worker_id",
    "traceparent",
    "usage_rolled",
)
"""Every column of ``runs``, in table order (a test checks it against the schema)."""


def run_from_row(row: Any) -> Run:
    """The ``Run`` of a stored row whose JSON and timestamps are already decoded."""
    trace = row.tool_resolution_trace
    return Run(
        run_id=row.run_id,
        sandbox_id=row.sandbox_id,
        agent_id=row.agent_id,
        agent_slug=row.agent_slug,
        agent_version=row.agent_version,
        kind=row.kind,
        status=row.status,
        event_payload=row.event_payload,
        trigger_id=row.trigger_id,
        outcome=row.outcome,
        output_text=row.output_text or "",
        tool_calls=[ToolCall.from_dict(c) for c in row.tool_calls or []],
        usage=Usage(row.tokens_in, row.tokens_out, row.cache_read_tokens, row.cache_write_tokens),
        cost_micros=row.cost_micros,
        duration_ms=row.duration_ms,
        error_message=row.error_message,
        error_type=row.error_type,
        tool_resolution_trace=ToolResolutionTrace.from_dict(trace) if trace else None,
        model=row.model,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        replay_of=row.replay_of,
        traceparent=row.traceparent,
    )
