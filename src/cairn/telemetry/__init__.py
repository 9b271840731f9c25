"""OpenTelemetry export: every run as a GenAI trace, plus metrics (docs/observability.md).

Off unless an OTLP endpoint is configured; when off, nothing here imports OpenTelemetry
and the runner has no observer, so runs cost what they cost before. ``start_export``
gives the runner its observer; ``export_status`` says what this process sent and dropped.

Modules: ``config`` (the ``OTEL_*`` variables), ``context`` (``traceparent`` in),
``spans`` (a run as a span tree, pure), ``semconv`` (the names), and, only when export is
on, ``otlp`` (the SDK pipeline) and ``metrics``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from cairn.telemetry.config import TelemetryConfig, config_from_env

if TYPE_CHECKING:
    from cairn.telemetry.otlp import OtlpExport

_active: list[OtlpExport] = []


def start_export(config: TelemetryConfig | None = None) -> OtlpExport | None:
    """The exporter for this process's runs, or ``None`` when export is not configured.
    Raises ``UsageError`` for a configuration it cannot honour, and ``UsageError`` naming
    the extra when the SDK is not installed."""
    config = config if config is not None else config_from_env()
    if config is None:
        return None
    try:
        from cairn.telemetry.otlp import OtlpExport
    except ImportError as exc:
        from cairn.errors import UsageError

        raise UsageError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}); "
            "install the extra: pip install 'cairn-runtime[otel]', or unset the variable"
        ) from None
    export = OtlpExport(config)
    _active.append(export)
    return export


def stop_export(export: OtlpExport, timeout_s: float = 3.0) -> None:
    """Flush (within ``timeout_s``) and stop an exporter from ``start_export``."""
    export.close(timeout_s)
    if export in _active:
        _active.remove(export)


def export_status() -> dict[str, Any]:
    """What this process exported: on/off, where to, runs and spans sent and dropped."""
    if not _active:
        return {
            "enabled": False,
            "endpoint": None,
            "detail": "export is off: set OTEL_EXPORTER_OTLP_ENDPOINT to turn it on",
        }
    stats = [export.stats for export in _active]
    counters = [f.name for f in fields(stats[0]) if f.name != "last_failure_at"]
    totals = {name: sum(getattr(each, name) for each in stats) for name in counters}
    last = max((each.last_failure_at for each in stats if each.last_failure_at), default=None)
    config = _active[-1].config
    return {
        "enabled": True,
        "endpoint": config.endpoint,
        "traces": config.traces,
        "metrics": config.metrics,
        "capture_content": config.capture_content,
        **totals,
        "last_failure_at": last,
    }
