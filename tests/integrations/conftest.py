"""Fixtures of the integration-source tests: one local connection provider per module
(real MCP servers over streamable HTTP on loopback), helpers that connect apps, and the
CLI fixture of ``tests/cli`` for the command tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import cli as cli
from tests.fakes.provider_server import FakeProvider, serve_provider


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """The provider, shared by a module's tests: each test issues tokens of its own."""
    with serve_provider() as served:
        yield served
