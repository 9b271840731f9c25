"""The ``embedded`` backend: the ledger is the queue.

Nothing is enqueued besides the run row itself. Workers in the same process are woken
directly when the fire commits. On PostgreSQL the fire's transaction also sends a
``NOTIFY`` (``cairn.store.notify``) that wakes idle workers in other processes when it
commits; on SQLite they find the run at their next look at the ledger (``IDLE_POLL_S``,
50 ms, when idle; at once when they have just finished a run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cairn.domain.runs import Run
from cairn.execution.worker import LedgerWorker

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cairn.services.app import App


class EmbeddedBackend:
    """Ledger-claiming workers, on SQLite or PostgreSQL."""

    name = "embedded"

    def __init__(self, app: App) -> None:
        self.app = app
        self.local: list[LedgerWorker] = []

    def enqueue(self, conn: Connection, runs: Sequence[Run]) -> None:
        """The committed row is the job; on PostgreSQL, announce it to other processes."""
        from cairn.store.notify import announce_runs

        if runs:
            announce_runs(conn)

    def accepted(self, runs: Sequence[Run]) -> None:
        """Wake this process's workers."""
        sandboxes = {run.sandbox_id for run in runs}
        for worker in self.local:
            worker.wake(sandboxes)

    def worker(self, *, concurrency: int) -> LedgerWorker:
        """A ledger worker of this process (woken by this process's fires)."""
        made = LedgerWorker(self.app, concurrency=concurrency, executor=self.name, listen=True)
        self.local.append(made)
        return made
