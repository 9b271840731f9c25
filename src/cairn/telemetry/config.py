"""Whether, and where, Cairn exports: read from the standard ``OTEL_*`` variables only.

Export is off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, or the
per-signal ``…_TRACES_ENDPOINT`` / ``…_METRICS_ENDPOINT``), and ``OTEL_SDK_DISABLED=true``
turns it off again. Reading them imports nothing from OpenTelemetry, so an installation
that does not export pays nothing. Everything else (headers, timeout, compression,
certificates, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_METRIC_EXPORT_INTERVAL``) is read by the SDK and its exporters themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cairn.errors import UsageError
from cairn.text import bare_url

CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_ON = {"true", "1", "yes", "span_only", "span_and_event"}
SUPPORTED_PROTOCOLS = ("http/protobuf",)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """What to export. ``endpoint`` is for display: without credentials or query."""

    traces: bool
    metrics: bool
    endpoint: str
    capture_content: bool
    max_queue_runs: int
    max_batch_spans: int
    schedule_delay_s: float


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _ON


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise UsageError(f"{name}={raw!r} must be positive")
    return value


shown_endpoint = bare_url  # where spans go, safe to print in ``status``


def config_from_env(env: Mapping[str, str] | None = None) -> TelemetryConfig | None:
    """The export configuration, or ``None`` when export is off (the default)."""
    env = os.environ if env is None else env
    if _flag(env.get("OTEL_SDK_DISABLED")):
        return None
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    traces_url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    metrics_url = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip()
    traces = bool(base or traces_url) and env.get("OTEL_TRACES_EXPORTER", "otlp") != "none"
    metrics = bool(base or metrics_url) and env.get("OTEL_METRICS_EXPORTER", "otlp") != "none"
    if not (traces or metrics):
        return None
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        protocol = env.get(name, "").strip()
        if protocol and protocol not in SUPPORTED_PROTOCOLS:
            raise UsageError(
                f"{name}={protocol!r} is not supported; Cairn exports OTLP over "
                f"{', '.join(SUPPORTED_PROTOCOLS)} (unset it, or point a collector at it)"
            )
    shown = traces_url or (base.rstrip("/") + "/v1/traces" if base else metrics_url)
    return TelemetryConfig(
        traces=traces,
        metrics=metrics,
        endpoint=shown_endpoint(shown),
        capture_content=_flag(env.get(CAPTURE_CONTENT)),
        max_queue_runs=_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        max_batch_spans=_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        schedule_delay_s=_int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
    )
