"""Worker rows and the backlog figures ``cairn status`` shows.

A worker process registers itself when it starts, renews ``heartbeat_at`` while it lives
and stamps ``stopped_at`` when it stops cleanly; a killed one simply stops renewing. The
rows are for operators (which workers are alive, since when); the runs' own leases, not
these rows, decide what is reaped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from cairn.domain.runs import LIVE_STATUSES
from cairn.store.rows import row_record
from cairn.store.schema import runs, workers


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One worker process as last recorded."""

    worker_id: str
    host: str
    pid: int
    concurrency: int
    executor: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    running: int = 0


@dataclass(frozen=True, slots=True)
class BacklogRow:
    """Queued and running runs of one sandbox, and its oldest queued run."""

    sandbox_id: str
    queued: int
    running: int
    oldest_queued_run_id: str | None
    oldest_queued_at: datetime | None


def register_worker(conn: Connection, row: WorkerRow) -> None:
    """Record a worker that starts (a restarted id replaces its old row); ``running`` is
    counted from the runs (``list_workers``), not stored."""
    conn.execute(delete(workers).where(workers.c.worker_id == row.worker_id))
    columns = {name: value for name, value in asdict(row).items() if name != "running"}
    conn.execute(insert(workers).values(columns | {"stopped_at": None}))


def beat_worker(conn: Connection, worker_id: str, now: datetime) -> None:
    """The worker is alive now."""
    conn.execute(update(workers).where(workers.c.worker_id == worker_id).values(heartbeat_at=now))


def stop_worker(conn: Connection, worker_id: str, now: datetime) -> None:
    """The worker stopped cleanly."""
    conn.execute(
        update(workers)
        .where(workers.c.worker_id == worker_id)
        .values(heartbeat_at=now, stopped_at=now)
    )


def forget_workers(conn: Connection, *, heard_before: datetime) -> int:
    """Drop rows of workers not heard from since ``heard_before`` (keeps the list short)."""
    result = conn.execute(delete(workers).where(workers.c.heartbeat_at < heard_before))
    return int(result.rowcount or 0)


def list_workers(conn: Connection) -> list[WorkerRow]:
    """Every recorded worker, newest heartbeat first, with how many runs it holds."""
    holding: dict[str, int] = {
        worker_id: int(count)
        for worker_id, count in conn.execute(
            select(runs.c.worker_id, func.count())
            .where(runs.c.status == "running", runs.c.worker_id.is_not(None))
            .group_by(runs.c.worker_id)
        )
    }
    rows = conn.execute(select(workers).order_by(workers.c.heartbeat_at.desc()))
    return [row_record(WorkerRow, row, running=holding.get(row.worker_id, 0)) for row in rows]


def backlog(conn: Connection, sandbox_id: str | None = None) -> list[BacklogRow]:
    """Queued and running runs per sandbox (one sandbox, or all), with the oldest queued."""
    query = (
        select(runs.c.sandbox_id, runs.c.status, func.count(), func.min(runs.c.run_id))
        .where(runs.c.status.in_(LIVE_STATUSES))
        .group_by(runs.c.sandbox_id, runs.c.status)
    )
    if sandbox_id is not None:
        query = query.where(runs.c.sandbox_id == sandbox_id)
    found: dict[str, dict[str, tuple[int, str | None]]] = {}
    for sandbox, status, count, oldest in conn.execute(query):
        found.setdefault(sandbox, {})[status] = (int(count), oldest)
    result: list[BacklogRow] = []
    for sandbox in sorted(found):
        queued, oldest = found[sandbox].get("queued", (0, None))
        created = None
        if oldest is not None:
            created = conn.execute(
                select(runs.c.created_at).where(runs.c.run_id == oldest)
            ).scalar_one_or_none()
        running = found[sandbox].get("running", (0, None))[0]
        result.append(BacklogRow(sandbox, queued, running, oldest, created))
    return result
