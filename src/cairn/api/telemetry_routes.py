"""``GET /api/v1/telemetry``: what the server exported to OpenTelemetry, and what it dropped.

Mounted by ``cairn.api.app`` (``EXTRA_ROUTERS``); the operation and its in-process route
are in ``cairn.api.telemetry_ops``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from cairn.api import telemetry_ops as ops
from cairn.api.app import KeyCallerDep
from cairn.api.app import problem_responses as _problems

router = APIRouter(prefix="/api/v1", tags=["telemetry"])


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


@router.get("/telemetry", response_model=TelemetryStatus, responses=_problems())
def get_telemetry(caller: KeyCallerDep) -> Any:
    """OpenTelemetry export of this server: runs and spans sent, and those that could not
    be (collector down, queue full), counted since it started."""
    return ops.get_telemetry(caller)
