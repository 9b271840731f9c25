"""Fixtures of the export tests: a real OTLP receiver, the export switched on towards it,
and the run-engine tests' plugin tool source (to make a source that is skipped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn.tools.kinds import source_kinds
from tests.cli.conftest import cli  # noqa: F401  (the real entry point, for test_cli)
from tests.runner import helpers
from tests.telemetry.receiver import Receiver

_OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)


@pytest.fixture(autouse=True)
def no_ambient_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, each test starts with export off."""
    for name in _OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fake_source_kind() -> Iterator[None]:
    """The runner tests' plugin source kind (``behaviour: refuse`` makes a skipped source)."""
    source_kinds.register(helpers.FAKE_KIND, helpers.FakeSource)
    yield
    source_kinds._loaded.pop(helpers.FAKE_KIND, None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An OTLP/HTTP receiver on a free loopback port."""
    started = Receiver()
    yield started
    started.stop()


@pytest.fixture
def export_on(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """Export switched on towards ``receiver`` by the standard variables; metrics are sent
    only when a test flushes, batches as soon as a run is built."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    return receiver
