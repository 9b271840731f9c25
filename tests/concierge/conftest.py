"""Fixtures of the Concierge tests: the CLI runner (shared with ``tests/cli``) and a real
server over the test's ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Deployment, make_app, make_keys
from tests.api.helpers import LiveServer
from tests.cli.conftest import cli

__all__ = ["cli", "served"]


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """``cairn serve`` (uvicorn on loopback, its worker pool running) over the test's
    ledger, with owner / editor / viewer keys of ``default`` and a second sandbox."""
    app = make_app(database_url, tmp_path / "server-home")
    keys = make_keys(app)
    server = LiveServer(app).start()
    deployed = Deployment(server, keys, database_url, tmp_path / "server-home")
    try:
        yield deployed
    finally:
        deployed.close_clients()
        server.stop()
        app.close()
