"""Fixtures of the explain/doctor tests: the CLI fixture of ``tests/cli``, one real HTTP MCP
server per module (the orders server, bearer auth), and an app with a short resolution
timeout for sources that hang."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from cairn.config import Settings
from cairn.services.app import App
from cairn.store import Store
from tests.cli.conftest import cli as cli
from tests.diagnosis.helpers import ORDERS_TOKEN
from tests.mcp_servers import HttpServer, serve_http


@pytest.fixture(scope="module")
def orders_server() -> Iterator[HttpServer]:
    """The orders MCP server over streamable HTTP, shared by a module's tests."""
    with serve_http(ORDERS_TOKEN) as server:
        yield server


@pytest.fixture
def quick_app(settings: Settings, store: Store) -> Iterator[App]:
    """An app whose sources get 0.3 s to list their tools (for a server that hangs)."""
    application = App(replace(settings, resolve_timeout_s=0.3), store)
    yield application
    application.close()
