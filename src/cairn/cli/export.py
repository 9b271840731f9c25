"""``cairn export …``: runs to OpenTelemetry after the fact, and the export's status.

``cairn export otlp --since 24h`` reads runs from the ledger (in-process, or from the
server at ``CAIRN_URL``) and sends them from this process to the endpoint in the standard
``OTEL_*`` variables, as the same span trees a live export sends. A run's ids derive from
its run id, so sending a run again repeats its trace rather than adding another.
"""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli, print_json
from cairn.errors import UsageError

PAGE = 1000


@click.group()
def export() -> None:
    """Send past runs to an OpenTelemetry collector; show what was exported and dropped."""


@export.command("otlp")
@click.option("--since", default="24h", show_default=True, help="Runs created in this window.")
@click.option("--agent", help="Only this agent's runs (slug).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def otlp(cli: CliContext, since: str, agent: str | None, as_json: bool) -> None:
    """Backfill: send the finished runs of the window as GenAI traces (no metrics: they
    would count old runs as new). Exit 1 when some could not be sent."""
    from dataclasses import replace

    from cairn.domain.runs import FINAL_STATUSES, event_from_dict, run_from_dict
    from cairn.durations import parse_duration
    from cairn.telemetry import start_export, stop_export
    from cairn.telemetry.config import config_from_env

    parse_duration(since)
    config = config_from_env()
    if config is None or not config.traces:
        raise UsageError(
            "nowhere to send: set OTEL_EXPORTER_OTLP_ENDPOINT (see docs/observability.md)"
        )
    exporter = start_export(replace(config, metrics=False))
    assert exporter is not None
    sent = skipped_live = 0
    before: str | None = None
    try:
        while True:
            params: dict[str, Any] = {"since": since, "limit": PAGE}
            if before:
                params["before"] = before
            if agent:
                params["agent"] = agent
            page = cli.call("list_runs", **params)
            for row in page["runs"]:
                if row["status"] not in FINAL_STATUSES:
                    skipped_live += 1
                    continue
                events = cli.call("get_events", run_id=row["run_id"])
                exporter.submit(run_from_dict(row), [event_from_dict(e) for e in events])
                sent += 1
            before = page.get("next_before")
            if not before:
                break
        flushed = exporter.flush(60.0)
        stats = exporter.stats
        report = {
            "endpoint": config.endpoint,
            "runs": sent,
            "runs_exported": stats.runs_exported,
            "spans_exported": stats.spans_exported,
            "runs_dropped": stats.runs_dropped + (0 if flushed else sent - stats.runs_exported),
            "skipped_live": skipped_live,
        }
    finally:
        stop_export(exporter, timeout_s=1.0)
    if as_json:
        print_json(report)
    else:
        click.echo(
            f"exported {report['runs_exported']} of {sent} runs "
            f"({report['spans_exported']} spans) to {config.endpoint}"
            + (f"; {report['runs_dropped']} could not be sent" if report["runs_dropped"] else "")
            + (f"; {skipped_live} still live, skipped" if skipped_live else "")
        )
    if report["runs_dropped"]:
        raise SystemExit(1)


@export.command("status")
@output(lambda found: click.echo(telemetry_line(found)))
@pass_cli
def status(cli: CliContext) -> Any:
    """Whether runs are exported, where to, and how many were sent and dropped (by the
    server at CAIRN_URL; in-process, by this process)."""
    return cli.call("get_telemetry")


def telemetry_line(found: dict[str, Any]) -> str:
    """The export's status for people (``cairn export status``, ``cairn status``)."""
    if not found["enabled"]:
        return f"OpenTelemetry export: off ({found.get('detail') or 'not configured'})"
    signals = [s for s in ("traces", "metrics") if found.get(s)]
    lines = [
        f"OpenTelemetry export: on, {' and '.join(signals)} to {found['endpoint']}",
        f"  sent: {found['runs_exported']} runs ({found['spans_exported']} spans); "
        f"dropped: {found['runs_dropped']} runs ({found['spans_dropped']} spans, "
        f"{found['runs_dropped_queue_full']} while the queue was full); "
        f"failed metric exports: {found['metric_exports_failed']}",
    ]
    if found.get("last_failure_at"):
        lines.append(f"  last failure: {found['last_failure_at']}")
    if found.get("capture_content"):
        lines.append("  message contents: captured (opted in)")
    return "\n".join(lines)
