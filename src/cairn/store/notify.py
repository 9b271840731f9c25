"""PostgreSQL's LISTEN/NOTIFY for queued runs: a fire tells idle workers in other processes
(or machines) that runs wait, so they claim them at once instead of at their next poll.

``announce_runs`` runs inside the fire's transaction: PostgreSQL delivers the notification
when, and only if, that transaction commits, so a worker never wakes for a run it cannot
see yet. ``run_announcements`` is a worker's listening connection, one per process. On
SQLite both do nothing: there is no NOTIFY, and idle workers poll the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import Connection

CHANNEL = "cairn_runs_queued"


def announce_runs(conn: Connection) -> None:
    """Inside a fire's transaction: wake listening workers when it commits."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def listens(store_url: str) -> bool:
    """Whether the ledger at ``store_url`` can announce runs."""
    return store_url.startswith(("postgresql", "postgres:"))


def libpq_url(store_url: str) -> str:
    """The ledger's URL as libpq (psycopg's own connections, procrastinate's pool) takes it."""
    from sqlalchemy.engine import make_url

    return make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run_announcements(store_url: str, listener: str) -> AsyncIterator[None]:
    """One item per notification that runs were queued, on a connection of its own (named
    ``listener`` in ``pg_stat_activity.application_name``, so an operator sees whose it
    is); ends with an exception when that connection is lost (the caller reconnects)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(
        libpq_url(store_url), autocommit=True, application_name=listener
    ) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        async for _notification in conn.notifies():
            yield None
