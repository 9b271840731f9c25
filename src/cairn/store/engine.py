"""Opening the ledger: engine set-up, SQLite pragmas, and migrations on first use.

``open_store`` costs one query when the schema is current: it compares the recorded
Alembic revision with ``SCHEMA_HEAD`` and only imports Alembic (slow to import) when the
database is new or behind. That keeps a cold ``cairn agent runs`` well under a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, SQLAlchemyError

from cairn.domain.limits import read_json
from cairn.errors import StoreError, UsageError
from cairn.store.version import SCHEMA_HEAD

__all__ = ["SCHEMA_HEAD", "Store", "open_store"]


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


class Store:
    """An open ledger database. ``begin()`` gives a transaction; ``connect()`` a plain read."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction that commits on success and rolls back on error."""
        with self._errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads (no explicit transaction)."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """The database's failures as Cairn's: unreachable (``StoreError``), or a value it
        refuses (``UsageError``, see ``_refused_value``)."""
        try:
            yield
        except OperationalError as exc:
            raise StoreError(f"database error on {redact_url(self.url)}: {exc.orig}") from exc
        except DataError as exc:
            raise _refused_value(exc) from exc

    def check_writable(self) -> None:
        """``StoreError`` in one line unless this process can write the ledger (a server on a
        read-only ledger would otherwise fail at its first write, after saying it serves)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(text("UPDATE sandboxes SET name = name WHERE 1 = 0"))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(
                f"the ledger {redact_url(self.url)} cannot be written ({reason}): "
                "`cairn serve` records runs there; fix its permissions or choose another ledger"
            ) from None

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def _refused_value(exc: DataError) -> UsageError:
    """A value the database cannot hold or compare (PostgreSQL refuses NUL characters in
    text, numbers out of a column's range): bad input, not a broken ledger."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "invalid value"
    return UsageError(f"a value in the request cannot be stored or searched for: {reason}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (a live view, the CLI) read while a run writes; NORMAL sync is
    # durable across process crashes, which is what a ledger on one machine needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _private_sqlite_file(url: str) -> None:
    """Make the ledger file (and so its WAL files, which SQLite creates with the same mode)
    readable by its owner only: it holds every sandbox's runs and key digests."""
    prefix = "sqlite:///"
    path = url[len(prefix) :].split("?", 1)[0] if url.startswith(prefix) else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(descriptor)
        os.chmod(path, 0o600)
    except OSError:  # a read-only or foreign file: opening it says what is wrong
        pass


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings Cairn relies on for each dialect."""
    url = normalise_url(url)
    try:
        if url.startswith("sqlite"):
            _private_sqlite_file(url)
            engine = create_engine(
                url, connect_args={"check_same_thread": False}, json_deserializer=read_json
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, json_deserializer=read_json)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database {redact_url(url)}: {exc}") from exc
    return engine


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision recorded in the database, or ``None`` for an empty database."""
    try:
        with conn.begin_nested() if conn.in_transaction() else nullcontext():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def migrate(store: Store) -> None:
    """Bring the schema to head with Alembic (idempotent)."""
    from cairn.store.migrations.runner import upgrade_to_head

    upgrade_to_head(store.engine)


def open_store(url: str, *, migrate_if_needed: bool = True) -> Store:
    """Open ``url``, migrating it first when it is new or behind. Raises ``StoreError``."""
    engine = create_store_engine(url)
    store = Store(normalise_url(url), engine)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
    except OperationalError as exc:
        raise StoreError(f"cannot open database {redact_url(url)}: {exc.orig}") from exc
    if revision != SCHEMA_HEAD:
        if not migrate_if_needed:
            raise StoreError(
                f"database {redact_url(url)} is at schema {revision or 'none'}, "
                f"expected {SCHEMA_HEAD}: run 'cairn db upgrade'"
            )
        try:
            migrate(store)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate database {redact_url(url)}: {exc}") from exc
    return store
