"""Fixtures of the execution tests: a cluster of real processes over the test's ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.services.app import App
from tests.api.conftest import Keys, make_app, make_keys
from tests.execution.processes import Cluster, Recorder


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """Processes started by the test over its ledger; all stopped at teardown."""
    made = Cluster(database_url, tmp_path / "home")
    made.home.mkdir()
    try:
        yield made
    finally:
        made.stop_all()


@pytest.fixture
def ledger_app(cluster: Cluster) -> Iterator[App]:
    """The test's own view of the ledger (same home, so the same secret key)."""
    app = make_app(cluster.database_url, cluster.home)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def keys(ledger_app: App) -> Keys:
    """Owner/editor/viewer keys of ``default``."""
    return make_keys(ledger_app)


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    """The side-effect recorder the runs POST to."""
    made = Recorder(tmp_path / "effects.log")
    try:
        yield made
    finally:
        made.close()
