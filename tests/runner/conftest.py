"""Fixtures of the run-engine tests: the plugin kinds registered, fresh hooks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from cairn.config import Settings
from cairn.models.backends import model_backends
from cairn.services.app import App
from cairn.store import Store
from cairn.tools.kinds import source_kinds
from tests.runner import helpers


@pytest.fixture(autouse=True)
def plugins() -> Iterator[None]:
    """Register the test tool-source kind and model backend through the plugin path; reset
    what the tools saw."""
    source_kinds.register(helpers.FAKE_KIND, helpers.FakeSource)
    model_backends.register(helpers.BrokenBackend.name, helpers.BrokenBackend)
    helpers.hooks = helpers.Hooks()
    yield
    helpers.hooks = helpers.Hooks()
    # Registry has no public unregister; drop the test plugins so that later tests (which
    # may list the installed backends or kinds) see only what is really installed.
    model_backends._loaded.pop(helpers.BrokenBackend.name, None)
    source_kinds._loaded.pop(helpers.FAKE_KIND, None)


@pytest.fixture
def quick_app(settings: Settings, store: Store) -> Iterator[App]:
    """An app whose sources get 0.3 s to list their tools (for hanging-source tests)."""
    application = App(replace(settings, resolve_timeout_s=0.3), store)
    yield application
    application.close()
