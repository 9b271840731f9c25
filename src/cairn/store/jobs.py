"""The SQL of the ``procrastinate`` execution backend (docs/scale-out.md). Each queued run
is one job, argument its run id, inserted by procrastinate's own SQL function on the
connection of the fire's transaction: the job exists exactly when the run row does.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

SCHEMA_LOCK = 0x6361_6972_6E01
"""The advisory lock under which one process at a time applies procrastinate's schema."""


def schema_present(conn: Connection) -> bool:
    """Whether procrastinate's tables and functions are in this database."""
    found = conn.execute(
        text(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_defer_jobs_v1')"
        )
    ).scalar_one()
    return bool(found)


def apply_schema(conn: Connection, schema_sql: str) -> bool:
    """Apply ``schema_sql`` (procrastinate's ``schema.sql``) unless it is already there;
    serialised across processes by an advisory lock. Returns whether it was applied."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
    if schema_present(conn):
        return False
    conn.exec_driver_sql(schema_sql.replace("%", "%%"))
    return True


def defer_runs(
    conn: Connection,
    run_ids: Sequence[str],
    *,
    queue: str,
    task: str,
    after_s: float | None = None,
) -> None:
    """One job per run on ``queue`` for ``task`` (arguments ``{"run_id": …}``), inserted in
    the transaction of ``conn``; to be taken no sooner than ``after_s`` from now if given."""
    if not run_ids:
        return
    conn.execute(
        text(
            "SELECT procrastinate_defer_jobs_v1(array_agg(ROW("
            "CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL, NULL, "
            "jsonb_build_object('run_id', run_id), "
            "now() + make_interval(secs => CAST(:after_s AS double precision))"
            ")::procrastinate_job_to_defer_v1)) "
            "FROM unnest(CAST(:run_ids AS text[])) AS run_id"
        ),
        {"queue": queue, "task": task, "run_ids": list(run_ids), "after_s": after_s},
    )


def defer_orphans(conn: Connection, *, queue: str, task: str) -> int:
    """A job for each queued run that has none waiting (accepted while another backend was
    selected, or whose job's worker died between taking the job and claiming the run); a
    run with two jobs executes once, since the claim is conditional. Returns how many."""
    orphans = list(
        conn.execute(
            text(
                "SELECT r.run_id FROM runs r WHERE r.status = 'queued' AND NOT EXISTS ("
                "SELECT 1 FROM procrastinate_jobs j WHERE j.queue_name = :queue "
                "AND j.status = 'todo' AND j.args->>'run_id' = r.run_id)"
            ),
            {"queue": queue},
        ).scalars()
    )
    defer_runs(conn, orphans, queue=queue, task=task)
    return len(orphans)


def retire_stalled_jobs(
    conn: Connection, *, queue: str, task: str, silent_for_s: float
) -> tuple[int, int]:
    """Jobs taken (``doing``) by procrastinate workers silent for ``silent_for_s`` (killed,
    crashed) are ended ``failed``, so ``doing`` means executing. Their runs are not re-run:
    one the dead worker had claimed ends ``worker_lost`` through its lease; one it had not
    yet claimed (still ``queued``) gets a new job. Returns (jobs ended, runs deferred)."""
    stalled = conn.execute(
        text(
            "SELECT j.id, j.args->>'run_id' AS run_id FROM procrastinate_jobs j "
            "WHERE j.queue_name = :queue AND j.status = 'doing' AND NOT EXISTS ("
            "SELECT 1 FROM procrastinate_workers w WHERE w.id = j.worker_id "
            "AND w.last_heartbeat > now() - make_interval(secs => :silent)) "
            "FOR UPDATE OF j SKIP LOCKED"
        ),
        {"queue": queue, "silent": silent_for_s},
    ).all()
    if not stalled:
        return 0, 0
    for row in stalled:
        conn.execute(
            text("SELECT procrastinate_finish_job_v1(:id, 'failed', false)"), {"id": row.id}
        )
    waiting = list(
        conn.execute(
            text("SELECT run_id FROM runs WHERE status = 'queued' AND run_id = ANY(:ids)"),
            {"ids": [row.run_id for row in stalled]},
        ).scalars()
    )
    defer_runs(conn, waiting, queue=queue, task=task)
    return len(stalled), len(waiting)
