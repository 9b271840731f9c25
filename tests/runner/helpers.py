"""Shared pieces of the run-engine tests: a plugin tool-source kind, plugin model backends,
and the checks every finished run must pass.

``FakeSource`` is a real ``ToolSource`` registered through ``source_kinds`` under
``test_runner_fake`` (the path a third-party plugin takes); its records live in the ledger
like any source. Its tools behave by name:

* ``explode``        raises ``RuntimeError("disk on fire")`` (a tool crash)
* ``ping``           sets ``hooks.pinged`` and returns ``"pong"``
* ``wait_for_gate``  sets ``hooks.gate_entered``, then waits for ``hooks.gate_open``
* ``off_protocol``   returns a plain string instead of a ``ToolOutput`` (a plugin bug)
* anything else      records the call in ``hooks.calls`` and returns ``{"sent": arguments}``

Listing behaves by the record's config ``behaviour``: ``ok``, ``hang`` or ``refuse``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import FINAL_STATUSES, Run, RunEvent
from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.ids import new_id
from cairn.models.base import ModelEvent, ModelRequest, TextDelta
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import get_run, get_run_events
from cairn.store import sources as source_store
from cairn.tools.base import SourceUnavailable, ToolContext, ToolOutput

SANDBOX = "default"
FAKE_KIND = "test_runner_fake"
BUILTIN_NAMES = ["clock_now", "http_request", "json_extract", "regex_find"]


@dataclass
class Hooks:
    """What the fake tools did, and the events a test synchronises on (made in the loop)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pinged: anyio.Event | None = None
    gate_entered: anyio.Event | None = None
    gate_open: anyio.Event | None = None


hooks = Hooks()


class FakeSource:
    """See the module docstring."""

    kind = FAKE_KIND

    def __init__(self, record: DataSource, context: ToolContext) -> None:
        self.source_id = record.source_id
        self.label = record.label
        self.config = record.config

    async def __aenter__(self) -> FakeSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def list_tools(self) -> list[ToolSpec]:
        behaviour = self.config.get("behaviour", "ok")
        if behaviour == "hang":
            await anyio.Event().wait()
        if behaviour == "refuse":
            raise SourceUnavailable("auth_refused", f"{self.label}: the server answered 403")
        return [ToolSpec(name, f"{name} (test tool)") for name in self.config["tools"]]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        if name == "explode":
            raise RuntimeError("disk on fire")
        if name == "ping":
            assert hooks.pinged is not None
            hooks.pinged.set()
            return ToolOutput(result="pong")
        if name == "wait_for_gate":
            assert hooks.gate_entered is not None and hooks.gate_open is not None
            hooks.gate_entered.set()
            await hooks.gate_open.wait()
            return ToolOutput(result="opened")
        if name == "off_protocol":
            return "not a ToolOutput"  # type: ignore[return-value]
        hooks.calls.append((name, arguments))
        return ToolOutput(result={"sent": arguments})


class BrokenBackend:
    """A model-backend plugin whose stream breaks after some text. ``settings.model`` picks
    the exception: ``value-error`` or ``timeout-error`` (what a vendor client may raise)."""

    name = "test-broken"

    def __init__(self, settings: ModelSettings, credentials: object = None) -> None:
        self.model = settings.model

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield TextDelta("Partial ")
        if self.model == "timeout-error":
            raise TimeoutError("read from the vendor timed out")
        raise ValueError("vendor sent a malformed chunk")


def add_source(
    app: App,
    tools: list[str],
    *,
    label: str | None = None,
    behaviour: str = "ok",
    **config: Any,
) -> DataSource:
    """Store a ``test_runner_fake`` source in the default sandbox."""
    source_id = new_id("src")
    record = DataSource(
        source_id=source_id,
        sandbox_id=SANDBOX,
        kind=FAKE_KIND,
        label=label or f"fake-{source_id.removeprefix('src_').lower()}",
        config={"tools": tools, "behaviour": behaviour, **config},
    )
    with app.store.begin() as conn:
        source_store.create_source(conn, record, app.secrets)
    return record


async def make_agent(
    app: App,
    script: Any,
    *,
    slug: str = "tester",
    system_prompt: str = "You test things.",
    tool_sources: list[str] | None = None,
    tool_allowlist: list[str] | None = None,
    **settings: Any,
) -> Agent:
    """Create a scripted agent through the services."""
    agent, _warnings = await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug=slug,
            system_prompt=system_prompt,
            tool_sources=tool_sources,
            tool_allowlist=tool_allowlist or [],
            model_settings=ModelSettings(script=script, **settings),
        ),
    )
    return agent


def stored(app: App, run_id: str) -> tuple[Run, list[RunEvent]]:
    """The run as the ledger holds it, and its events."""
    return get_run(app, SANDBOX, run_id), get_run_events(app, SANDBOX, run_id)


def assert_complete(run: Run, events: list[RunEvent]) -> None:
    """What every finished row must carry, whatever happened."""
    assert run.status in FINAL_STATUSES
    assert run.outcome is not None
    assert run.created_at is not None and run.started_at is not None
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.duration_ms is not None and run.duration_ms > 0
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    terminal = [event for event in events if event.kind in ("finish", "error")]
    assert terminal == [events[-1]], "exactly one terminal event, and it comes last"


def assert_failed(
    run: Run, events: list[RunEvent], *, status: str = "failed", error_type: str
) -> str:
    """A run that did not succeed: complete, with a helpful error and a final error event.
    Returns the error message."""
    assert_complete(run, events)
    assert run.status == status
    assert run.error_type == error_type
    assert run.error_message is not None and len(run.error_message.strip()) > 10
    last = events[-1]
    assert last.kind == "error"
    assert last.data["message"] == run.error_message
    assert last.data["error_type"] == error_type
    return run.error_message


def kinds(events: list[RunEvent]) -> list[str]:
    return [event.kind for event in events]
