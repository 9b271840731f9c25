"""The hot read path on the embedded SQLite ledger, with the standard ``sqlite3`` module.

Why a second read path: importing SQLAlchemy costs more than half of a cold ``cairn agent
runs --json`` process (~115 ms of ~260 ms here), and that command is what operators run
over and over while debugging. This reader implements exactly the listing of
``cairn.store.runs.listing_query`` (same SQL shape, same index walk) and nothing else; a
test runs both paths over the same ledger with every filter and requires identical
results. Writes, migrations and every other query stay on SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn.domain.limits import read_json
from cairn.domain.runs import Run, RunFilter
from cairn.errors import NotFound
from cairn.ids import id_floor
from cairn.store.rows import RUN_COLUMNS, run_from_row
from cairn.store.version import SCHEMA_HEAD

_JSON_COLUMNS = frozenset({"event_payload", "tool_calls", "tool_resolution_trace"})
_TIME_COLUMNS = frozenset(
    {"created_at", "started_at", "finished_at", "heartbeat_at", "cancel_requested_at"}
)
_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"


class _DecodedRow:
    """Attribute access over a ``sqlite3`` row, decoding JSON and timestamps as SQLAlchemy
    would (timestamps are stored naive in UTC)."""

    __slots__ = ("_values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = dict(zip(RUN_COLUMNS, values, strict=True))

    def __getattr__(self, name: str) -> Any:
        value = self._values[name]
        if value is None:
            return None
        if name in _JSON_COLUMNS:
            return read_json(value)
        if name in _TIME_COLUMNS:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value


def sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL, or ``None`` for anything else."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


class SqliteReader:
    """Reads agents' run listings from an up-to-date SQLite ledger."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    @classmethod
    def open(cls, path: Path) -> SqliteReader | None:
        """A reader, or ``None`` when the file is missing or not at this code's schema (the
        caller then takes the SQLAlchemy path, which creates or migrates it)."""
        if not path.is_file():
            return None
        connection = sqlite3.connect(path, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=5000")
            (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except (sqlite3.Error, TypeError):
            connection.close()
            return None
        if revision != SCHEMA_HEAD:
            connection.close()
            return None
        return cls(connection)

    def agent_id(self, sandbox_id: str, slug: str) -> str:
        """The id of agent ``slug``, or ``NotFound`` (same message as the store's)."""
        row = self._conn.execute(
            "SELECT agent_id FROM agents WHERE sandbox_id = ? AND slug = ?", (sandbox_id, slug)
        ).fetchone()
        if row is None:
            raise NotFound(f"no agent {slug!r} in sandbox {sandbox_id!r} (see 'cairn agent list')")
        return str(row[0])

    def list_runs(self, where: RunFilter) -> list[Run]:
        """``cairn.store.runs.list_runs`` for this ledger."""
        since = None if where.since is None else id_floor("run", where.since)
        until = None if where.until is None else id_floor("run", where.until)
        clauses = ["sandbox_id = ?"]
        params: list[Any] = [where.sandbox_id]
        for condition, value in (
            ("agent_id =", where.agent_id),
            ("status =", where.status),
            ("trigger_id =", where.trigger_id),
            ("kind =", where.kind),
            ("run_id <", where.before),
            ("run_id >=", since),
            ("run_id <", until),
        ):
            if value is not None:
                clauses.append(f"{condition} ?")
                params.append(value)
        sql = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY run_id DESC LIMIT ?"
        rows = self._conn.execute(sql, (*params, where.limit)).fetchall()
        return [run_from_row(_DecodedRow(row)) for row in rows]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
