"""The execution-backend interface, and what every backend shares: the back-pressure gate
and the wait for a run to finish.

A backend has three duties. ``enqueue`` runs inside the fire's own transaction, so a run
is reachable by workers exactly when its row is committed (nothing to reconcile after a
crash). ``accepted`` runs after the commit (wake a local worker at once). ``worker``
builds what ``cairn serve`` and ``cairn worker`` run to execute runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskStatus

from cairn.domain.runs import FINAL_STATUSES, Run
from cairn.errors import Busy

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cairn.services.app import App


class Worker(Protocol):
    """Executes runs until stopped."""

    worker_id: str

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Work until ``stop``; ``task_status.started()`` once it takes runs."""

    async def stop(self, grace_s: float) -> None:
        """Take no more runs; give running ones ``grace_s`` to finish, then cancel them.
        Queued runs stay queued for the next worker."""


class ExecutionBackend(Protocol):
    """How accepted runs reach workers (see the module docstring)."""

    name: str

    def enqueue(self, conn: Connection, runs: Sequence[Run]) -> None:
        """Inside the fire's transaction, after the run rows are inserted."""

    def accepted(self, runs: Sequence[Run]) -> None:
        """After the fire's transaction committed."""

    def worker(self, *, concurrency: int) -> Worker:
        """A worker of this backend for this process."""


RETRY_AFTER_S = 2
"""What ``Retry-After`` says when the backlog is full: long enough for workers to drain
some of it, short enough that senders come back while there is room."""


class BacklogGate:
    """Refuses fires before they are accepted once the backlog (queued runs in the ledger)
    reaches ``limit``. The count is cached for ``ttl_s`` per process: the limit is a bound
    on the ledger's growth, not an exact quota, and a burst must not add a count query to
    every request."""

    def __init__(self, app: App, limit: int, ttl_s: float = 0.05) -> None:
        self.app = app
        self.limit = limit
        self.ttl_s = ttl_s
        self._count = 0
        self._read_at = float("-inf")

    def check(self, adding: int = 1) -> None:
        """Raise ``Busy`` (with ``retry_after_s``) when ``adding`` more runs would pass it."""
        if self.limit <= 0:
            return
        now = time.monotonic()
        if now - self._read_at > self.ttl_s:
            self._recount(now)
        if self._count + adding > self.limit and now - self._read_at > REFUSE_FRESH_S:
            self._recount(now)  # refuse on a fresh count only: the backlog may have drained
        if self._count + adding > self.limit:
            raise Busy(
                f"the backlog is full ({self._count} runs queued, limit {self.limit}); "
                f"nothing was accepted, retry after {RETRY_AFTER_S} s",
                retry_after_s=RETRY_AFTER_S,
            )
        self._count += adding

    def _recount(self, now: float) -> None:
        from cairn.store import runs as run_store

        with self.app.store.connect() as conn:
            self._count = run_store.count_queued(conn)
        self._read_at = now


REFUSE_FRESH_S = 0.005
"""A refusal re-reads a count older than this: at most one count per 5 ms in a burst of
refusals, and a fire is never refused on the strength of a backlog that has drained."""


class Completions:
    """Lets a caller in this process wait for a run to be final (a synchronous test fire).

    A local worker signals the runs it finishes at once; runs executed by another process
    are seen by reading the ledger, every ``poll_s`` at first and less often as the wait
    grows (hundreds of waiting callers must not flood the database with reads)."""

    def __init__(self, poll_s: float = 0.2, max_poll_s: float = 2.0) -> None:
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self._waiting: dict[str, anyio.Event] = {}

    def finished(self, run_id: str) -> None:
        """A local worker finished ``run_id``."""
        event = self._waiting.pop(run_id, None)
        if event is not None:
            event.set()

    async def wait(self, app: App, run: Run) -> Run:
        """The run once it is final, read from the ledger."""
        from cairn.store import runs as run_store

        event = self._waiting.setdefault(run.run_id, anyio.Event())
        poll = self.poll_s
        try:
            while True:
                with anyio.move_on_after(poll):
                    await event.wait()
                poll = min(poll * 1.5, self.max_poll_s)
                with app.store.connect() as conn:
                    current = run_store.get_run(conn, run.sandbox_id, run.run_id)
                if current.status in FINAL_STATUSES:
                    return current
        finally:
            self._waiting.pop(run.run_id, None)
