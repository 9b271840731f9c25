"""Read paths for the hot listing: ``open_reader`` picks the plain-``sqlite3`` reader for an
up-to-date embedded ledger and the SQLAlchemy store for anything else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cairn.domain.runs import Run, RunFilter

if TYPE_CHECKING:
    from cairn.store.engine import Store


class LedgerReader(Protocol):
    """What the run listing needs from the ledger."""

    def agent_id(self, sandbox_id: str, slug: str) -> str:
        """The id of agent ``slug`` in the sandbox, or ``NotFound``."""
        ...

    def list_runs(self, where: RunFilter) -> list[Run]:
        """Runs newest first (see ``cairn.store.runs.list_runs``)."""
        ...


class StoreReader:
    """The listing through SQLAlchemy (PostgreSQL, or SQLite when it needs migrating)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def agent_id(self, sandbox_id: str, slug: str) -> str:
        """The id of agent ``slug``."""
        from cairn.store import agents as agent_store

        with self.store.connect() as conn:
            return agent_store.get_agent(conn, sandbox_id, slug).agent_id

    def list_runs(self, where: RunFilter) -> list[Run]:
        """Runs newest first."""
        from cairn.store import runs as run_store

        with self.store.connect() as conn:
            return run_store.list_runs(conn, where)
