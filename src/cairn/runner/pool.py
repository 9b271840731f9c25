"""The server's workers: a bounded queue of accepted runs and N tasks that execute them.

A fire is accepted (its row written ``queued``) only when the queue has room; a full queue
answers ``Busy`` (HTTP 429) before anything is written, so no fire is ever dropped
silently. On shutdown the pool stops taking work, lets in-flight runs finish for a grace
period, then cancels them, and marks whatever is still queued ``cancelled`` with the reason:
no run is left ``queued`` or ``running``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.abc import TaskStatus

from cairn.domain.agents import Agent
from cairn.domain.runs import Run
from cairn.domain.sources import DataSource
from cairn.errors import Busy
from cairn.runner.engine import Runner
from cairn.store import runs as run_store

log = logging.getLogger("cairn.pool")


@dataclass(slots=True)
class Job:
    """An accepted run waiting for a worker; ``done`` is set when its row is final."""

    run: Run
    agent: Agent
    available: list[DataSource]
    done: anyio.Event = field(default_factory=anyio.Event)


class WorkerPool:
    """Executes accepted runs off the request path, ``workers`` at a time."""

    def __init__(self, runner: Runner, *, workers: int = 8, queue_size: int = 1000) -> None:
        self.runner = runner
        self.workers = workers
        self.queue_size = queue_size
        self._send, self._receive = anyio.create_memory_object_stream[Job](queue_size)
        self._queued = 0
        self._accepting = False
        self._stopped = anyio.Event()

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return self._queued

    def check_capacity(self) -> None:
        """Raise ``Busy`` unless a new fire can be queued now (call before accepting it)."""
        if not self._accepting:
            raise Busy("the server is shutting down and takes no new runs; retry shortly")
        if self._queued >= self.queue_size:
            raise Busy(
                f"the run queue is full ({self.queue_size} waiting); nothing was fired, "
                "retry after a short wait"
            )

    def submit(self, run: Run, agent: Agent, available: list[DataSource]) -> Job:
        """Queue an accepted (``queued``) run. ``check_capacity`` first, with no await between."""
        self.check_capacity()
        job = Job(run, agent, available)
        self._send.send_nowait(job)
        self._queued += 1
        if self.runner.bus is not None:
            self.runner.bus.run_queued(run)
        return job

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the workers; returns after ``shutdown``."""
        try:
            async with anyio.create_task_group() as group:
                for _ in range(self.workers):
                    group.start_soon(self._work)
                self._accepting = True
                task_status.started()
        finally:
            # Both ends are closed here, not only the sending end in ``shutdown``: an
            # unclosed receiving end is a resource leak (anyio warns when it is collected).
            self._send.close()
            self._receive.close()
            self._stopped.set()

    async def _work(self) -> None:
        async for job in self._receive:
            self._queued -= 1
            try:
                now = datetime.now(UTC)
                with self.runner.store.begin() as conn:
                    claimed = run_store.claim_queued_run(conn, job.run.run_id, now)
                if claimed:
                    job.run.started_at = now
                    await self.runner.execute(job.run, job.agent, job.available)
                else:  # cancelled while it waited: let its followers go
                    self._release(job.run)
            except Exception as exc:  # one run's failure must not stop the workers
                log.exception("run %s could not be completed", job.run.run_id)
                self._end_failed(job.run, exc)
            finally:
                job.done.set()

    def _end_failed(self, run: Run, exc: Exception) -> None:
        """Give a run whose execution raised (its final write refused, the database gone)
        a final row if it can still be written, and release its live followers."""
        reason = f"internal error: the run could not be completed: {type(exc).__name__}: {exc}"
        run.status, run.error_type, run.error_message = "failed", "internal_error", reason
        try:
            with self.runner.store.begin() as conn:
                run_store.fail_live_run(conn, run.run_id, datetime.now(UTC), reason)
        except Exception:  # the reaper ends it once its heartbeat is stale
            log.exception("run %s could not be marked failed", run.run_id)
        if self.runner.bus is not None:
            self.runner.bus.run_finished(run)

    def _release(self, run: Run) -> None:
        """A queued run that will never execute here: end its live followers' streams."""
        if self.runner.bus is not None:
            run.status = "cancelled"
            self.runner.bus.run_finished(run)

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop taking runs, give in-flight ones ``grace_s`` to finish, cancel the rest."""
        self._accepting = False
        self._send.close()
        pending: list[Job] = []
        while True:
            try:
                pending.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        now = datetime.now(UTC)
        with self.runner.store.begin() as conn:
            for job in pending:
                run_store.cancel_queued_run(
                    conn, job.run.run_id, now, "the server shut down before the run started"
                )
                self._release(job.run)
                job.done.set()
        self._queued = 0
        with anyio.move_on_after(grace_s):
            await self._stopped.wait()  # workers end when the closed queue is drained
        for run_id in self.runner.live_run_ids():
            self.runner.cancel(run_id)
        with anyio.move_on_after(5):
            await self._stopped.wait()
