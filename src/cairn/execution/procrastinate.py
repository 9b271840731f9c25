"""The ``procrastinate`` backend (PostgreSQL): each accepted run is also a job of
procrastinate, deferred in the fire's transaction (``cairn.store.jobs``), and ``cairn
worker`` runs procrastinate workers whose one task claims that run in the ledger and
executes it as a ``LedgerWorker`` does; the conditional claim is why a run with two jobs
still executes once. How accepting, workers, crashes and the schema work:
docs/scale-out.md ("The procrastinate backend") and docs/ledger.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from cairn.domain.runs import Run
from cairn.errors import UsageError
from cairn.execution.worker import LedgerWorker

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cairn.services.app import App

log = logging.getLogger("cairn.worker")

QUEUE = "cairn"
"""The procrastinate queue Cairn's runs are deferred on (other applications may share the
database with their own queues)."""

TASK = "cairn.execute_run"
"""The procrastinate task name of a run's job; its arguments are ``{"run_id": …}``."""

RESTART_PAUSE_S = 1.0
"""The pause before a procrastinate worker that stopped by itself is started again."""

AGENT_WAIT_S = 0.5
"""How long a run whose agent is at ``CAIRN_AGENT_CONCURRENCY`` waits in the queue (as a
new job scheduled that far ahead) before a worker looks at it again."""

FETCH_FALLBACK_S = 5.0
"""How often an idle worker looks for jobs if it missed a ``NOTIFY`` (procrastinate's
default): the listening connection is what wakes it."""


class ProcrastinateBackend:
    """Runs as procrastinate jobs, on PostgreSQL."""

    name = "procrastinate"

    def __init__(self, app: App) -> None:
        if app.store.dialect != "postgresql":
            raise UsageError(
                "CAIRN_EXECUTOR=procrastinate needs PostgreSQL (CAIRN_DATABASE_URL is "
                f"{app.store.dialect}); use CAIRN_EXECUTOR=embedded on SQLite"
            )
        try:
            from procrastinate.schema import SchemaManager
        except ImportError as exc:
            raise UsageError(
                "CAIRN_EXECUTOR=procrastinate needs the procrastinate package: "
                "pip install 'cairn-runtime[procrastinate]'"
            ) from exc
        from cairn.store import jobs as job_store

        self.app = app
        with app.store.begin() as conn:
            if not job_store.schema_present(conn) and job_store.apply_schema(
                conn, SchemaManager.get_schema()
            ):
                log.warning("applied procrastinate's schema to the ledger's database")

    def enqueue(self, conn: Connection, runs: Sequence[Run]) -> None:
        """One job per run, in the fire's transaction."""
        from cairn.store import jobs as job_store

        job_store.defer_runs(conn, [run.run_id for run in runs], queue=QUEUE, task=TASK)

    def accepted(self, runs: Sequence[Run]) -> None:
        """Nothing: the job's ``NOTIFY`` reaches every worker, this process's included."""

    def worker(self, *, concurrency: int) -> ProcrastinateWorker:
        """A procrastinate worker executing this process's share of the runs."""
        return ProcrastinateWorker(self.app, concurrency=concurrency)


class ProcrastinateWorker(LedgerWorker):
    """A procrastinate worker whose task executes runs as a ``LedgerWorker`` does: the
    Cairn worker row, the leases and their reaping, the execution and its failure path are
    the ledger worker's; only where run ids come from differs."""

    def __init__(self, app: App, *, concurrency: int = 8) -> None:
        super().__init__(app, concurrency=concurrency, executor="procrastinate")
        import procrastinate

        from cairn.store.notify import libpq_url

        self.queue_app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=libpq_url(app.store.url),
                min_size=1,
                max_size=max(4, min(self.concurrency, 16)),
            )
        )
        self.queue_app.task(
            name=TASK,
            queue=QUEUE,
            # A job fails only if claiming its run failed (the database was away): try
            # again, waiting 2, 4, 6 … s, for about a quarter of an hour.
            retry=procrastinate.RetryStrategy(max_attempts=30, linear_wait=2),
        )(self._take)
        self._queue_worker: Any = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register, reap expired leases, give orphaned queued runs a job, then run the
        procrastinate worker until ``stop`` (again after a pause if it stopped by itself:
        procrastinate stops a worker whose listening connection or heartbeat failed, as
        when the database goes away for a while)."""
        logging.getLogger("procrastinate").setLevel(logging.WARNING)  # a line per job is noise
        self._register()
        self.housekeep()
        self._defer_orphans()
        try:
            async with self.queue_app.open_async(), anyio.create_task_group() as group:
                group.start_soon(self._housekeeping)
                group.start_soon(self._retiring)
                task_status.started()
                while not self._stopping:
                    self._queue_worker = self._new_queue_worker()
                    try:
                        await self._queue_worker.run()
                    except Exception:
                        log.exception("the procrastinate worker failed")
                    if not self._stopping:
                        log.error("the procrastinate worker stopped by itself: restarting")
                        await anyio.sleep(RESTART_PAUSE_S)
                if self._active:  # runs that outlived the worker's own wait (``stop``)
                    await self._idle.wait()
                group.cancel_scope.cancel()
        finally:
            self._mark_stopped()

    def _new_queue_worker(self) -> Any:
        from procrastinate.worker import Worker

        return Worker(
            app=self.queue_app,
            queues=[QUEUE],
            name=self.worker_id,
            concurrency=self.concurrency,
            # runs waiting for their agent are jobs scheduled ahead, which no NOTIFY
            # announces: look for them at the pace they become due
            fetch_job_polling_interval=(
                AGENT_WAIT_S if self.app.settings.agent_concurrency > 0 else FETCH_FALLBACK_S
            ),
            listen_notify=True,
            install_signal_handlers=False,  # `cairn worker` and `cairn serve` handle signals
            delete_jobs="successful",  # the run row is the record
            shutdown_graceful_timeout=None,  # ``stop`` bounds the runs itself
            # its liveness, at the pace of the lease (see ``_retiring``)
            update_heartbeat_interval=max(0.5, min(self.lease_s / 3, 10.0)),
            stalled_worker_timeout=self.lease_s,
        )

    async def stop(self, grace_s: float) -> None:
        """Take no more jobs (those not started stay for the next worker); running runs
        get ``grace_s`` to finish, then are cancelled with the reason."""
        self._stopping = True
        if self._queue_worker is not None:
            self._queue_worker.stop()
        await super().stop(grace_s)

    async def _take(self, run_id: str) -> None:
        """The task: claim ``run_id`` and execute it; skip it when it is not queued."""
        from cairn.store import jobs as job_store
        from cairn.store import runs as run_store

        if self._stopping:  # taken as the worker stopped: leave the run for the next one
            with self.app.store.begin() as conn:
                job_store.defer_runs(conn, [run_id], queue=QUEUE, task=TASK)
            return
        with self.app.store.begin() as conn:
            run = run_store.claim_run(
                conn,
                run_id,
                self.worker_id,
                datetime.now(UTC),
                agent_limit=self.app.settings.agent_concurrency,
            )
            if run is True:  # its agent is at its limit: wait, in the queue, not here
                job_store.defer_runs(conn, [run_id], queue=QUEUE, task=TASK, after_s=AGENT_WAIT_S)
                return
        if run is False:
            log.debug("run %s is not queued (cancelled or taken): skipped", run_id)
            return
        self._active[run.run_id] = run
        await self._execute(run)

    def _defer_orphans(self) -> None:
        from cairn.store import jobs as job_store

        with self.app.store.begin() as conn:
            count = job_store.defer_orphans(conn, queue=QUEUE, task=TASK)
        if count:
            log.warning("deferred jobs for %d queued run(s) that had none", count)

    async def _retiring(self) -> None:
        """End the jobs of dead procrastinate workers (see the module docstring)."""
        from cairn.store import jobs as job_store

        silent_s = self.lease_s  # three missed procrastinate heartbeats
        while True:
            await anyio.sleep(max(1.0, min(self.lease_s, 10.0)))
            try:
                with self.app.store.begin() as conn:
                    ended, deferred = job_store.retire_stalled_jobs(
                        conn, queue=QUEUE, task=TASK, silent_for_s=silent_s
                    )
            except Exception:  # the database may be away for a while
                log.exception("ending stalled procrastinate jobs failed")
                continue
            if ended:
                log.warning(
                    "ended %d job(s) of dead procrastinate workers; %d run(s) deferred again",
                    ended,
                    deferred,
                )
