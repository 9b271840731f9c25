"""A run's metrics: the GenAI client histograms per model turn, and Cairn's own.

Recorded from the same plan as the spans (so the numbers agree with the trace), on the
export worker's thread. Attributes stay low in cardinality: agent, kind, status, outcome,
provider, model, skip reason; never a run id.
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from cairn.telemetry import semconv as sc
from cairn.telemetry.spans import RunTrace, queue_wait_ms

# The conventions' advised buckets for the two GenAI histograms.
TOKEN_BUCKETS = [4.0**i for i in range(14)]
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]
_NS = 1e9


class RunMetrics:
    """The instruments, created once per meter."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used per model turn, by token type",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of each model turn, retries included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.runs = meter.create_counter(
            sc.METRIC_RUNS, unit="{run}", description="Finished runs by status and outcome"
        )
        self.run_duration = meter.create_histogram(
            sc.METRIC_RUN_DURATION, unit="s", description="Run duration, start to final row"
        )
        self.queue_wait = meter.create_histogram(
            sc.METRIC_QUEUE_WAIT, unit="s", description="Time from accepted to started"
        )
        self.resolution_duration = meter.create_histogram(
            sc.METRIC_RESOLUTION_DURATION, unit="s", description="Tool resolution per run"
        )
        self.sources_skipped = meter.create_counter(
            sc.METRIC_SOURCES_SKIPPED,
            unit="{source}",
            description="Tool sources skipped during resolution, by reason",
        )

    def record(self, trace: RunTrace) -> None:
        """Record one finished run."""
        run = trace.run
        root = trace.spans[0]
        agent = {sc.AGENT_NAME: run.agent_slug}
        self.runs.add(
            1,
            agent
            | {
                sc.RUN_KIND: run.kind,
                sc.RUN_STATUS: run.status,
                sc.RUN_OUTCOME: run.outcome or "none",
            },
        )
        self.run_duration.record((root.end_ns - root.start_ns) / _NS, agent)
        wait = queue_wait_ms(run)
        if wait is not None:
            self.queue_wait.record(wait / 1000, agent | {sc.RUN_KIND: run.kind})
        resolution = run.tool_resolution_trace
        if resolution is not None:
            self.resolution_duration.record(resolution.duration_ms / 1000, agent)
            for skipped in resolution.sources_skipped:
                self.sources_skipped.add(
                    1, agent | {sc.SOURCE_KIND: skipped.kind, sc.SKIP_REASON: skipped.reason}
                )
        for chat in trace.by_operation(sc.CHAT):
            model = {
                sc.OPERATION_NAME: sc.CHAT,
                sc.PROVIDER_NAME: chat.attributes[sc.PROVIDER_NAME],
                sc.REQUEST_MODEL: chat.attributes[sc.REQUEST_MODEL],
            }
            duration = model | ({sc.ERROR_TYPE: chat.error_type} if chat.error_type else {})
            self.operation_duration.record((chat.end_ns - chat.start_ns) / _NS, duration)
            for kind, key in (("input", sc.USAGE_INPUT_TOKENS), ("output", sc.USAGE_OUTPUT_TOKENS)):
                self.token_usage.record(int(chat.attributes[key]), model | {sc.TOKEN_TYPE: kind})  # type: ignore[arg-type]
