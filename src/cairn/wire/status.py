"""Wire models of ``cairn status`` (a sandbox's backlog and the workers on the ledger) and
of the server's telemetry export.

A module of ``cairn.wire`` so the status route owns its shape, as the other feature
routes do; the OpenAPI document then tells clients what ``GET …/status`` answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class WorkerStatus(BaseModel):
    """One worker process that registered on the ledger."""

    worker_id: str
    host: str | None = None
    pid: int | None = None
    executor: str | None = None
    concurrency: int | None = None
    running: int | None = Field(None, description="Runs it holds now")
    started_at: str | None = None
    heartbeat_at: str | None = None
    stopped_at: str | None = None
    alive: bool = Field(description="Not stopped, and its heartbeat is within the lease")


class ExecutionStatus(BaseModel):
    """The sandbox's backlog and every worker on the ledger."""

    sandbox_id: str
    executor: str = Field(description="The execution backend (CAIRN_EXECUTOR)")
    lease_s: float = Field(description="A running run's lease: silent this long, it is lost")
    max_backlog: int | None = Field(description="Queued runs past which fires are refused")
    queued: int
    running: int
    oldest_queued_run_id: str | None = None
    oldest_queued_at: str | None = None
    oldest_queued_age_s: float | None = None
    workers: list[WorkerStatus]
    telemetry: dict[str, Any] | None = Field(
        None, description="This process's OpenTelemetry export: runs and spans sent, dropped"
    )


class TelemetryStatus(BaseModel):
    """Export on or off, where to, and the counters since the process started."""

    enabled: bool
    endpoint: str | None
    detail: str | None = None
    traces: bool = False
    metrics: bool = False
    capture_content: bool = False
    runs_exported: int = 0
    spans_exported: int = 0
    runs_dropped: int = 0
    spans_dropped: int = 0
    runs_dropped_queue_full: int = 0
    metric_exports_failed: int = 0
    last_failure_at: str | None = None
