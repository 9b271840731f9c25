"""Fixtures of the attacker's tests: a served Cairn on an embedded ledger with two tenants.

``site`` is sandbox ``default`` (A: owner, editor and viewer keys) and sandbox ``other``
(B: owner and viewer keys), served by a real uvicorn on loopback, with the local owner key
``cairn serve`` keeps in ``CAIRN_HOME`` and an agent in each sandbox. The automatic local
login is off, as it is unless the operator opts in.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from cairn.config import Settings
from cairn.domain.agents import ModelSettings
from cairn.services.access import local_key
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.store import open_store
from tests.api.conftest import OTHER, Keys, make_keys
from tests.api.helpers import LiveServer


@dataclass
class Site:
    """The served Cairn, its keys, and the local owner key an attacker wants."""

    server: LiveServer
    app: App
    keys: Keys
    local_owner: str
    home: Path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.url

    def http(self, token: str | None = None) -> httpx.Client:
        """Raw HTTP, with ``token`` as the bearer key (close it)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)


def build_app(home: Path, url: str, **settings: object) -> App:
    """An application over ``url`` with ``settings`` overrides."""
    home.mkdir(parents=True, exist_ok=True)
    base = Settings(home=home, database_url=url, resolve_timeout_s=3.0)
    from dataclasses import replace

    return App(replace(base, **settings), open_store(url))  # type: ignore[arg-type]


async def _agents(app: App) -> None:
    script = ModelSettings(script={"turns": [{"text": "ok"}]})
    for sandbox in ("default", OTHER):
        await create_agent(
            app, sandbox, AgentSpec(slug="helper", system_prompt="Help.", model_settings=script)
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    """One server for the module (SQLite: the embedded default an attacker meets first)."""
    home = tmp_path_factory.mktemp("security-home")
    ledger = home / "ledger.db"
    shutil.copy(sqlite_template, ledger)
    app = build_app(home, f"sqlite:///{ledger}")
    keys = make_keys(app)
    local = local_key(app, "default")
    local_key(app, OTHER)
    anyio.run(_agents, app)
    server = LiveServer(app, graceful_timeout_s=0).start()
    try:
        yield Site(server, app, keys, local, home)
    finally:
        server.stop()
        app.close()
