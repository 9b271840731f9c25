"""Shared fixtures. Storage-touching tests take ``app`` (or ``store``) and so run twice:
on SQLite and on the local PostgreSQL server.

PostgreSQL is found at ``CAIRN_TEST_POSTGRES_URL`` (default: the local server's ``test``
database). When it cannot be reached the PostgreSQL half is skipped with a notice, unless
``CAIRN_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns that into a failure.
Each test session creates its own database on the server, so parallel sessions and
leftover data cannot interfere.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cairn.config import Settings
from cairn.services.app import App
from cairn.store import Store, open_store
from cairn.store.engine import normalise_url
from cairn.store.schema import metadata

POSTGRES_URL = os.environ.get(
    "CAIRN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("CAIRN_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio (the server's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite ledger, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    """A fresh, migrated database on the local PostgreSQL server for this session."""
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"cairn_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (CAIRN_REQUIRE_POSTGRES=1) but: {exc}")
        yield None
        return
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    open_store(url).close()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(normalise_url(url))
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        conn.execute(
            text(
                "INSERT INTO sandboxes (sandbox_id, name, created_at) "
                "VALUES ('default', 'default', now())"
            )
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """An empty, migrated ledger (with the ``default`` sandbox) on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str | None = request.getfixturevalue("postgres_server_url")
    if url is None:
        pytest.skip("PostgreSQL not reachable at CAIRN_TEST_POSTGRES_URL: PostgreSQL half skipped")
    _reset_postgres(url)
    return url


@pytest.fixture
def cairn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CAIRN_HOME (key file, default database) for the test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CAIRN_HOME", str(home))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_SANDBOX", raising=False)
    monkeypatch.delenv("CAIRN_SECRET_KEY", raising=False)
    return home


@pytest.fixture
def settings(database_url: str, cairn_home: Path) -> Settings:
    """Settings over the test's ledger. Resolution may take up to 15 s: starting a stdio MCP
    server (a Python process importing the SDK) takes seconds on a loaded 2-core machine;
    tests about slow or dead sources set a short timeout of their own."""
    return Settings(home=cairn_home, database_url=database_url, resolve_timeout_s=15.0)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The test's ledger, opened."""
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def app(settings: Settings, store: Store) -> Iterator[App]:
    """The application over the test's ledger (on SQLite and on PostgreSQL)."""
    application = App(settings, store)
    yield application
    application.close()


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the PostgreSQL half will run."""
    mode = "required" if REQUIRE_POSTGRES else "skipped with a notice if unreachable"
    return f"cairn: PostgreSQL at {POSTGRES_URL} ({mode})"
