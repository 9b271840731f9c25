"""What the runner tells an observer (OpenTelemetry export, say) about a finished run.

One call per run, after the final row is written: the observer builds what it needs from
the row and the run's events, so nothing observes a run from inside the engine and a run
costs the same whether anyone watches. ``run_finished`` runs on the run's own path: it
must return at once (hand the work to a thread) and never raise.

What the events alone cannot give back, per-turn timing, usage and stop reason, the runner
keeps with ``TurnTimer`` in the ``turns`` list of the run's final event (``finish`` or
``error``), so a backfill from the ledger sees exactly what a live observer sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

import anyio

from cairn.domain.runs import Run, RunEvent, Usage
from cairn.models.base import ToolCallRequest


class RunObserver(Protocol):
    """Told of every run this process finished."""

    def run_finished(self, run: Run, events: Sequence[RunEvent]) -> None:
        """``run`` is final and in the ledger; ``events`` are all of its events, in order."""
        ...


class TurnTimer:
    """Times one model turn, retries included, into ``turns``: ``turn``, ``started_at``,
    ``ended_at`` (ISO), ``tokens_in``/``tokens_out`` of this turn, and ``stop_reason`` with
    ``tool_call_ids`` (and ``model``, when the vendor named it) when it answered, or
    ``error_type`` when it did not."""

    __slots__ = ("_in", "_out", "_turns", "_usage", "record")

    def __init__(self, turns: list[dict[str, Any]], turn: int, usage: Usage) -> None:
        self._turns = turns
        self._usage = usage
        self._in = usage.tokens_in
        self._out = usage.tokens_out
        self.record: dict[str, Any] = {"turn": turn, "started_at": datetime.now(UTC).isoformat()}

    def __enter__(self) -> TurnTimer:
        return self

    def done(self, stop: str, calls: Sequence[ToolCallRequest], model: str | None = None) -> None:
        """The turn answered: its stop reason, the calls it asked for, and the model that
        answered when the vendor said."""
        self.record["stop_reason"] = stop
        self.record["tool_call_ids"] = [call.call_id for call in calls]
        if model:
            self.record["model"] = model

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: TracebackType | None
    ) -> None:
        record = self.record
        record["ended_at"] = datetime.now(UTC).isoformat()
        record["tokens_in"] = self._usage.tokens_in - self._in
        record["tokens_out"] = self._usage.tokens_out - self._out
        if exc is not None:
            record["error_type"] = (
                "cancelled"
                if isinstance(exc, anyio.get_cancelled_exc_class())
                else getattr(exc, "error_type", "internal_error")
            )
        self._turns.append(record)
