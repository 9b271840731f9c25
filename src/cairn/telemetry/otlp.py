"""Runs to an OTLP endpoint with the official OpenTelemetry SDK, off the run's path.

Imported only when export is configured (``cairn.telemetry.config``). A finished run is
handed over with one non-blocking queue put; a worker thread plans its spans
(``cairn.telemetry.spans``), asks the SDK's sampler (``OTEL_TRACES_SAMPLER``), records its
metrics with the SDK's meter, encodes the spans (``cairn.telemetry.wire``) and sends them
in batches through the OTLP/HTTP exporter's client, which reads the endpoint, headers,
timeout, compression and TLS settings from the ``OTEL_EXPORTER_OTLP_*`` variables and
retries. A collector that is down costs the worker, never a run: the queue is bounded, and
what could not be sent is counted.

Why not ``Tracer`` spans, the ``BatchSpanProcessor`` and the generic encoder: the spans
are built after the fact, a whole run at a time, and that path cost several times the run
itself in CPU, under the same interpreter lock as the runs (bench: runner_overhead); and
the batch processor drops spans silently when its queue is full. The worker batches the
same way and honours the same ``OTEL_BSP_*`` variables (its queue counts runs), so every
span that was not sent is counted and shown in ``status``.
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
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    set_span_in_context,
)

from cairn import __version__
from cairn.domain.runs import Run, RunEvent
from cairn.telemetry.config import TelemetryConfig
from cairn.telemetry.metrics import RunMetrics
from cairn.telemetry.spans import RunTrace, plan_run
from cairn.telemetry.wire import encode_request, encode_trace, resource_attributes

_log = logging.getLogger(__name__)
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
        self._resource = resource_attributes(resource.attributes)
        self._scope = ("cairn", __version__)
        # The sampler of OTEL_TRACES_SAMPLER / _ARG, as the SDK's provider reads them.
        self._sampler = TracerProvider(resource=resource, shutdown_on_exit=False).sampler
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
        self._wake = threading.Event()
        # A run is about five to ten spans: wake when a batch's worth is waiting, or half
        # the queue, whichever comes first.
        self._wake_at = max(1, min(config.max_batch_spans // 8, config.max_queue_runs // 2))
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
            return
        if self._queue.qsize() >= self._wake_at:
            self._wake.set()

    def submit(self, run: Run, events: Sequence[RunEvent]) -> None:
        """Queue a run, waiting for room (the backfill, which is not on a run's path)."""
        self._queue.put(("run", run, events))
        if self._queue.qsize() >= self._wake_at:
            self._wake.set()

    # --- the worker -------------------------------------------------------------------

    def _work(self) -> None:
        """Wake every ``OTEL_BSP_SCHEDULE_DELAY``, when a batch's worth of runs is queued, or
        on a flush, and handle everything queued at once: a few long turns on the
        interpreter lock cost the runs less than one short turn after every run."""
        while True:
            self._wake.wait(self.config.schedule_delay_s)
            self._wake.clear()
            batch: list[bytes] = []
            runs = 0
            flushes: list[threading.Event] = []
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[0] == "run":
                    spans = self._spans_of(item[1], item[2])
                    if spans:
                        batch.extend(spans)
                        runs += 1
                    if len(batch) >= self.config.max_batch_spans:
                        self._send(batch, runs)
                        batch, runs = [], 0
                elif item[0] == "flush":
                    flushes.append(item[1])
                else:
                    stop = True
            if batch:
                self._send(batch, runs)
            for done in flushes:
                done.set()
            if stop:
                return

    def _spans_of(self, run: Run, events: Sequence[RunEvent]) -> list[bytes]:
        """Plan the run, record its metrics, and encode its spans if the sampler keeps
        them; a bug here loses one run, counted."""
        try:
            plan = plan_run(run, events, capture_content=self.config.capture_content)
            if self.metrics is not None:
                self.metrics.record(plan)
            if self._span_exporter is None or not self._sampled(plan):
                return []
            return encode_trace(plan)
        except Exception:
            _log.exception("could not build the spans of run %s", run.run_id)
            self.stats.runs_dropped += 1
            self.stats.failed()
            return []

    def _sampled(self, plan: RunTrace) -> bool:
        """One decision per run, on its root span, as the SDK would take it."""
        remote = plan.remote_parent
        parent: Context | None = None
        if remote is not None:
            caller = SpanContext(
                remote.trace_id,
                remote.span_id,
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if remote.sampled else 0),
            )
            parent = set_span_in_context(NonRecordingSpan(caller))
        root = plan.spans[0]
        decision = self._sampler.should_sample(
            parent, plan.trace_id, root.name, SpanKind.INTERNAL, root.attributes
        )
        return decision.decision is Decision.RECORD_AND_SAMPLE

    def _send(self, batch: list[bytes], runs: int) -> None:
        assert self._span_exporter is not None
        try:
            sent = _post(self._span_exporter, encode_request(self._resource, self._scope, batch))
        except Exception:
            _log.exception("the span exporter raised")
            sent = False
        if sent:
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
        self._wake.set()
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
        self._wake.set()
        if self._span_exporter is not None:
            self._span_exporter.shutdown()  # type: ignore[no-untyped-call]
        meters = self._meter_provider
        if meters is not None:
            _bounded(lambda: meters.shutdown(timeout_millis=1000), 1.5)


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


def _post(exporter: OTLPSpanExporter, payload: bytes) -> bool:
    """Send an encoded ``ExportTraceServiceRequest`` with the official exporter's HTTP
    client: its endpoint, headers, timeout, compression, TLS and retries are those of the
    ``OTEL_EXPORTER_OTLP_*`` variables as the SDK reads them. (The exporter's public
    ``export`` takes SDK span objects and encodes them; ours are encoded already.)"""
    if exporter._shutdown:
        return False
    return bool(exporter._client.export(payload).success)
