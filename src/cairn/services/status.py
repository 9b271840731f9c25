"""What ``cairn status`` shows: the backlog per sandbox, the workers and their heartbeats,
and the oldest queued run, read from the ledger (so any node answers for all of them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cairn.services.app import App
from cairn.store import workers as worker_store
from cairn.text import iso, record


def execution_status(app: App, sandbox_id: str) -> dict[str, Any]:
    """The sandbox's backlog and every worker on the ledger, as JSON; ``telemetry`` is this
    process's OpenTelemetry export (runs and spans sent and dropped)."""
    from cairn.telemetry import export_status

    now = datetime.now(UTC)
    with app.store.connect() as conn:
        backlog = worker_store.backlog(conn, sandbox_id)
        known = worker_store.list_workers(conn)
    lease = app.settings.lease_s
    row = backlog[0] if backlog else None
    return {
        "sandbox_id": sandbox_id,
        "executor": app.settings.executor,
        "lease_s": lease,
        "max_backlog": app.gate.limit,
        "queued": row.queued if row else 0,
        "running": row.running if row else 0,
        "oldest_queued_run_id": row.oldest_queued_run_id if row else None,
        "oldest_queued_at": iso(row.oldest_queued_at) if row else None,
        "oldest_queued_age_s": (
            round((now - row.oldest_queued_at).total_seconds(), 3)
            if row and row.oldest_queued_at
            else None
        ),
        "workers": [
            record(worker)
            | {
                "alive": worker.stopped_at is None
                and (now - worker.heartbeat_at).total_seconds() <= lease
            }
            for worker in known
        ],
        "telemetry": export_status(),
    }
