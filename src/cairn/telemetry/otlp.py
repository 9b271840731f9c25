"""Runs to an OTLP endpoint through the official OpenTelemetry SDK, off the run's path.

Imported only when export is configured (``cairn.telemetry.config``). A finished run is
handed over with one non-blocking queue put; a worker thread builds its spans (SDK tracer,
explicit timestamps, the ids of ``cairn.telemetry.spans``), records its metrics, and
exports spans in batches with the OTLP/HTTP exporter. A collector that is down costs the
worker, never a run: the queue is bounded, and what could not be sent is counted.

Why not the SDK's ``BatchSpanProcessor``: it drops spans silently (a log line) when its
queue is full, and the spans are built after the fact here anyway, a whole run at a time.
The worker batches the same way and honours the same ``OTEL_BSP_*`` variables (its queue
counts runs), so every span that was not sent is counted and shown in ``status``.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from cairn.domain.runs import Run, RunEvent
from cairn.telemetry.config import TelemetryConfig
from cairn.telemetry.metrics import RunMetrics
from cairn.telemetry.spans import RunTrace, plan_run

_log = logging.getLogger(__name__)
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}
EXIT_FLUSH_S = 3.0


@dataclass(slots=True)
class ExportStats:
    """What this process sent and what it could not. Counters only grow."""

    runs_exported: int = 0
    spans_exported: int = 0
    runs_dropped: int = 0
    spans_dropped: int = 0
    runs_dropped_queue_full: int = 0
    metric_exports_failed: int = 0
    last_failure_at: str | None = None

    def failed(self) -> None:
        self.last_failure_at = datetime.now(UTC).isoformat()


class _PlannedIds(IdGenerator):
    """Gives the tracer the ids the plan derived from the run id (one thread uses it)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class _Collect(SpanProcessor):
    """Keeps ended spans for the worker's next batch."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class _CountedMetricExporter(OTLPMetricExporter):
    """The OTLP metric exporter, counting the exports that failed."""

    def __init__(self, stats: ExportStats) -> None:
        super().__init__()
        self._stats = stats

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self._stats.metric_exports_failed += 1
            self._stats.failed()
        return result


def _resource() -> Resource:
    """``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` as the SDK reads them, with
    ``cairn`` as the service name when neither names one."""
    resource = Resource.create({})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "cairn"}))
    return resource


_Item = (
    tuple[Literal["run"], Run, Sequence[RunEvent]]
    | tuple[Literal["flush"], threading.Event]
    | tuple[Literal["stop"]]
)


class OtlpExport:
    """The process's exporter: a ``RunObserver`` for the runner, and the backfill's sink."""

    def __init__(self, config: TelemetryConfig) -> None:
        self.config = config
        self.stats = ExportStats()
        resource = _resource()
        self._ids = _PlannedIds()
        self._collect = _Collect()
        self._tracer_provider = TracerProvider(
            resource=resource, id_generator=self._ids, shutdown_on_exit=False
        )
        self._tracer_provider.add_span_processor(self._collect)
        self._tracer = self._tracer_provider.get_tracer("cairn")
        self._span_exporter = OTLPSpanExporter() if config.traces else None
        self._meter_provider: MeterProvider | None = None
        self.metrics: RunMetrics | None = None
        if config.metrics:
            reader = PeriodicExportingMetricReader(_CountedMetricExporter(self.stats))
            self._meter_provider = MeterProvider(
                resource=resource, metric_readers=[reader], shutdown_on_exit=False
            )
            self.metrics = RunMetrics(self._meter_provider.get_meter("cairn"))
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=config.max_queue_runs)
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="cairn-otlp-export", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # --- the run's side: never blocks, never raises ------------------------------------

    def run_finished(self, run: Run, events: Sequence[RunEvent]) -> None:
        """Queue a finished run for export; a full queue drops it, counted."""
        try:
            self._queue.put_nowait(("run", run, events))
        except queue.Full:
            self.stats.runs_dropped += 1
            self.stats.runs_dropped_queue_full += 1
            self.stats.failed()

    def submit(self, run: Run, events: Sequence[RunEvent]) -> None:
        """Queue a run, waiting for room (the backfill, which is not on a run's path)."""
        self._queue.put(("run", run, events))

    # --- the worker -------------------------------------------------------------------

    def _work(self) -> None:
        batch: list[ReadableSpan] = []
        runs = 0
        due: float | None = None
        while True:
            timeout = None if due is None else max(due - time.monotonic(), 0.0)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None and item[0] == "run":
                spans = self._spans_of(item[1], item[2])
                if spans:
                    batch.extend(spans)
                    runs += 1
                    due = due or time.monotonic() + self.config.schedule_delay_s
            flush = item is not None and item[0] == "flush"
            if batch and (
                flush or len(batch) >= self.config.max_batch_spans or time.monotonic() >= (due or 0)
            ):
                self._send(batch, runs)
                batch, runs, due = [], 0, None
            if item is not None and item[0] == "flush":
                item[1].set()
            if item is not None and item[0] == "stop":
                return

    def _spans_of(self, run: Run, events: Sequence[RunEvent]) -> list[ReadableSpan]:
        """Build the run's spans and record its metrics; a bug here loses one run, counted."""
        try:
            plan = plan_run(run, events, capture_content=self.config.capture_content)
            if self.metrics is not None:
                self.metrics.record(plan)
            if self._span_exporter is None:
                return []
            self._emit(plan)
            spans, self._collect.spans = self._collect.spans, []
            return spans
        except Exception:
            _log.exception("could not build the spans of run %s", run.run_id)
            self.stats.runs_dropped += 1
            self.stats.failed()
            self._collect.spans = []
            return []

    def _emit(self, plan: RunTrace) -> None:
        self._ids.trace_id = plan.trace_id
        remote = plan.remote_parent
        root_context: Context | None = None
        if remote is not None:
            caller = SpanContext(
                remote.trace_id,
                remote.span_id,
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if remote.sampled else 0),
            )
            root_context = set_span_in_context(NonRecordingSpan(caller))
        contexts: dict[str, Context] = {}
        started = []
        for planned in plan.spans:
            self._ids.span_id = planned.span_id
            parent = root_context if planned.parent is None else contexts[planned.parent]
            span = self._tracer.start_span(
                planned.name,
                context=parent,
                kind=_KINDS[planned.kind],
                attributes=planned.attributes,
                start_time=planned.start_ns,
            )
            for event in planned.events:
                span.add_event(event.name, event.attributes, event.time_ns)
            if planned.error_type is not None:
                span.set_status(Status(StatusCode.ERROR, planned.error_message))
            contexts[planned.key] = set_span_in_context(span)
            started.append((span, planned.end_ns))
        for span, end_ns in reversed(started):
            span.end(end_time=end_ns)

    def _send(self, batch: list[ReadableSpan], runs: int) -> None:
        assert self._span_exporter is not None
        try:
            result = self._span_exporter.export(batch)
        except Exception:
            _log.exception("the span exporter raised")
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.stats.spans_exported += len(batch)
            self.stats.runs_exported += runs
        else:
            self.stats.spans_dropped += len(batch)
            self.stats.runs_dropped += runs
            self.stats.failed()

    # --- flushing and closing ---------------------------------------------------------

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Export everything queued so far (and collect metrics); ``False`` if that took
        longer than ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        done = threading.Event()
        try:
            self._queue.put(("flush", done), timeout=timeout_s)
        except queue.Full:
            return False
        sent = done.wait(max(deadline - time.monotonic(), 0.0))
        if self._meter_provider is not None:
            remaining = max(deadline - time.monotonic(), 0.0)
            sent = _bounded(self._meter_provider.force_flush, remaining) and sent
        return sent

    def close(self, timeout_s: float = EXIT_FLUSH_S) -> None:
        """Send what is queued within ``timeout_s``, then stop: an exporter still retrying
        against a dead collector is interrupted rather than holding up the exit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.flush(timeout_s)
        try:
            self._queue.put_nowait(("stop",))
        except queue.Full:
            pass  # a daemon thread: it ends with the process
        if self._span_exporter is not None:
            self._span_exporter.shutdown()  # type: ignore[no-untyped-call]
        meters = self._meter_provider
        if meters is not None:
            _bounded(lambda: meters.shutdown(timeout_millis=1000), 1.5)
        self._tracer_provider.shutdown()


def _bounded(work: Any, timeout_s: float) -> bool:
    """Run ``work()`` in a daemon thread, waiting at most ``timeout_s``: an SDK call that
    retries against a dead collector must not hold up a flush or the process's exit."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(work() is not False)
        except Exception:
            outcome.append(False)

    thread = threading.Thread(target=run, name="cairn-otlp-flush", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(outcome and outcome[0])
