"""The ``embedded`` backend: the ledger is the queue.

Nothing is enqueued besides the run row itself; on PostgreSQL the fire's transaction also
sends a ``NOTIFY`` so that idle workers elsewhere hear of it when it commits. Workers in
the same process are woken directly.
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
        """The committed row is the job: nothing more to write."""

    def accepted(self, runs: Sequence[Run]) -> None:
        """Wake this process's workers."""
        for worker in self.local:
            worker.wake()

    def worker(self, *, concurrency: int) -> LedgerWorker:
        """A ledger worker of this process (woken by this process's fires)."""
        made = LedgerWorker(self.app, concurrency=concurrency, executor=self.name)
        self.local.append(made)
        return made
