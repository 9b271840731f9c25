"""Fixtures of the API tests: real uvicorn servers on loopback ports over fresh ledgers.

``deployment`` is one server per test module and backend (SQLite, then PostgreSQL): most
tests only read and fire, each on agents of its own (``slug``), so sharing a server keeps
the suite fast. ``launch`` starts servers with options of the test's own (a tiny queue, a
short shutdown grace, a restart on the same port) over the function-scoped
``database_url`` ledger. Both make owner / editor / viewer keys for ``default`` and an
owner key for a second sandbox, ``other``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import cairn
from cairn.config import Settings
from cairn.services.access import create_key, create_sandbox
from cairn.services.app import App
from cairn.store import open_store
from tests.api.helpers import LiveServer
from tests.conftest import _reset_postgres

OTHER = "other"


@dataclass
class Keys:
    """Tokens of the keys a deployment starts with."""

    owner: str
    editor: str
    viewer: str
    other_owner: str
    other_viewer: str


def make_keys(app: App) -> Keys:
    """Owner/editor/viewer of ``default``; owner and viewer of ``other`` (created here)."""
    create_sandbox(app, OTHER, "Another tenant")
    return Keys(
        owner=create_key(app, "default", "owner", "owner")[1],
        editor=create_key(app, "default", "editor", "editor")[1],
        viewer=create_key(app, "default", "viewer", "viewer")[1],
        other_owner=create_key(app, OTHER, "owner", "owner")[1],
        other_viewer=create_key(app, OTHER, "viewer", "viewer")[1],
    )


def make_app(database_url: str, home: Path) -> App:
    """A fresh application object (its own runner and bus) over the ledger."""
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=home, database_url=database_url, resolve_timeout_s=3.0)
    return App(settings, open_store(database_url))


@dataclass
class Deployment:
    """A served Cairn: its URL, its keys, and the App behind it (to check the ledger)."""

    server: LiveServer
    keys: Keys
    database_url: str
    home: Path
    clients: list[cairn.Client] = field(default_factory=list)
    _http: httpx.Client | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.url

    @property
    def app(self) -> App:
        """The server's application object."""
        return self.server.app

    def client(self, token: str | None = None, sandbox: str = "default") -> cairn.Client:
        """An SDK client over HTTP (closed at teardown); the owner key by default."""
        made = cairn.Client(self.url, api_key=token or self.keys.owner, sandbox=sandbox)
        self.clients.append(made)
        return made

    def async_client(self, token: str | None = None, sandbox: str = "default") -> cairn.AsyncClient:
        """An async SDK client over HTTP (close it with ``async with``)."""
        return cairn.AsyncClient(self.url, api_key=token or self.keys.owner, sandbox=sandbox)

    @property
    def http(self) -> httpx.Client:
        """Raw HTTP to the server, for status codes, headers and problem bodies (send the
        ``Authorization`` header yourself)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=10)
        return self._http

    def close_clients(self) -> None:
        """Close every client handed out so far."""
        for made in self.clients:
            made.close()
        self.clients.clear()
        if self._http is not None:
            self._http.close()
            self._http = None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_ledger(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> str:
    """An empty, migrated ledger for one module's server, on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("api-ledger") / "ledger.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str | None = request.getfixturevalue("postgres_server_url")
    if url is None:
        pytest.skip("PostgreSQL not reachable at CAIRN_TEST_POSTGRES_URL: PostgreSQL half skipped")
    _reset_postgres(url)
    return url


@pytest.fixture(scope="module")
def deployment(
    module_ledger: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One server for the module, with its keys."""
    home = tmp_path_factory.mktemp("api-home")
    app = make_app(module_ledger, home)
    keys = make_keys(app)
    # Streams a test left open (an endless agent tail) are cut at once when the module ends.
    server = LiveServer(app, graceful_timeout_s=0).start()
    deployed = Deployment(server, keys, module_ledger, home)
    try:
        yield deployed
    finally:
        deployed.close_clients()
        server.stop()
        app.close()


@pytest.fixture
def slug() -> str:
    """An agent slug of the test's own, so tests sharing a server never collide."""
    return f"agent-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def owner(deployment: Deployment) -> Iterator[cairn.Client]:
    """The SDK with an owner key of ``default``."""
    with cairn.Client(deployment.url, api_key=deployment.keys.owner) as client:
        yield client


Launch = Callable[..., Deployment]


@pytest.fixture
def launch(database_url: str, tmp_path: Path) -> Iterator[Launch]:
    """``launch(**create_app_options)`` → a started ``Deployment`` over the test's ledger;
    ``launch(port=…, keys=…)`` restarts on the same port and ledger with a fresh App (a new
    process, as far as the server is concerned). Every server is stopped at teardown."""
    started: list[Deployment] = []
    apps: list[App] = []

    def start(*, port: int = 0, keys: Keys | None = None, **options: Any) -> Deployment:
        home = tmp_path / "home"
        app = make_app(database_url, home)
        apps.append(app)
        made_keys = keys or make_keys(app)
        server = LiveServer(app, port=port, **options).start()
        deployed = Deployment(server, made_keys, database_url, home)
        started.append(deployed)
        return deployed

    yield start
    for deployed in started:
        deployed.close_clients()
        if deployed.server.running:
            deployed.server.stop()
    for app in apps:
        app.close()
