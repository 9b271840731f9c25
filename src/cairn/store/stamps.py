"""What the hot paths' caches compare against: the raw columns a cached object was built
from, read with one plain driver statement.

A cache in ``cairn.services.caches`` keeps a decrypted source (or a source's triggers)
together with the raw values it was built from. Before each use it reads those values
again here and reuses its object only when they are equal. Comparing the stored values
themselves (the secret's ciphertext, the config's JSON, the status), rather than a version
counter, means no writer anywhere (another process, another helper's new code path) can
leave a cache serving an old secret or config by forgetting to bump something.

These statements go to the driver's cursor on the connection's own DBAPI connection (so
inside the caller's transaction), bypassing SQLAlchemy's compiler, execution context and
result processing on purpose: per event that is a few microseconds instead of hundreds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

_SOURCE = (
    "SELECT sandbox_id, kind, label, config, secret_ciphertext, status, updated_at "
    "FROM sources WHERE source_id = {p}"
)
# Only what a trigger decision reads: fire counters change on every fire and do not count.
_TRIGGERS = (
    "SELECT t.trigger_id, t.agent_id, a.slug, t.event_type_filter, t.filter_config, "
    "t.rate_limit_per_hour, t.status, t.updated_at "
    "FROM triggers t JOIN agents a ON a.agent_id = t.agent_id "
    "WHERE t.sandbox_id = {p} AND t.data_source_id = {p} ORDER BY t.trigger_id"
)


# Every column: a run is built from the whole agent and the whole source list.
_AGENT = (
    "SELECT agent_id, sandbox_id, slug, name, description, system_prompt, tool_sources, "
    "tool_allowlist, model_settings, version, status, created_at, updated_at "
    "FROM agents WHERE sandbox_id = {p} AND agent_id = {p}"
)
_SANDBOX_SOURCES = (
    "SELECT source_id, kind, label, config, secret_ciphertext, status, status_reason, "
    "created_at, updated_at, checked_at FROM sources WHERE sandbox_id = {p} ORDER BY source_id"
)


def _rows(conn: Connection, template: str, params: tuple[str, ...]) -> list[tuple[Any, ...]]:
    sql = template.format(p="?" if conn.dialect.paramstyle == "qmark" else "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def source_stamp(conn: Connection, source_id: str) -> tuple[Any, ...] | None:
    """The raw stored values of source ``source_id`` (``None``: no such source)."""
    rows = _rows(conn, _SOURCE, (source_id,))
    return rows[0] if rows else None


def trigger_stamp(conn: Connection, sandbox_id: str, source_id: str) -> tuple[Any, ...]:
    """The raw decision-relevant values of every trigger bound to the source."""
    return tuple(_rows(conn, _TRIGGERS, (sandbox_id, source_id)))


def agent_stamp(conn: Connection, sandbox_id: str, agent_id: str) -> tuple[Any, ...] | None:
    """The raw stored row of agent ``agent_id`` (``None``: no such agent in the sandbox)."""
    rows = _rows(conn, _AGENT, (sandbox_id, agent_id))
    return rows[0] if rows else None


def sandbox_sources_stamp(conn: Connection, sandbox_id: str) -> tuple[Any, ...]:
    """The raw stored rows of every source of the sandbox, with their kinds second."""
    return tuple(_rows(conn, _SANDBOX_SOURCES, (sandbox_id,)))
