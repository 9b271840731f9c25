"""Building usage for real: scripted agents whose token counts are fixed by their script,
fired through the runner (test fires, and trigger fires from webhook events), plus run rows
written straight into the ledger for moments a test cannot wait for (hours or days ago)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run, Usage
from cairn.domain.sources import DataSource
from cairn.domain.triggers import Trigger
from cairn.ids import id_at
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.ingest import ingest
from cairn.services.runs import fire_agent
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source
from cairn.store import runs as run_store

# Priced scripted models (per million tokens, so micro-units per token): the shipped table
# prices every scripted model at 0, this overlay makes cost sums checkable.
PRICES = {"scripted:priced-1": {"input": 2, "output": 10}}
MICROS_IN, MICROS_OUT = 2, 10


def script(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    """One text turn with exactly these token counts."""
    return {
        "turns": [{"text": "done", "usage": {"tokens_in": tokens_in, "tokens_out": tokens_out}}]
    }


async def make_agent(
    app: App,
    slug: str,
    *,
    tokens_in: int,
    tokens_out: int,
    model: str = "priced-1",
    sandbox: str = "default",
) -> Agent:
    """A tool-less scripted agent: each of its runs uses exactly ``tokens_in``/``tokens_out``."""
    agent, _ = await create_agent(
        app,
        sandbox,
        AgentSpec(
            slug=slug,
            system_prompt=f"You are {slug}.",
            tool_sources=[],
            model_settings=ModelSettings(model=model, script=script(tokens_in, tokens_out)),
        ),
    )
    return agent


async def fire(app: App, slug: str, times: int, sandbox: str = "default") -> list[Run]:
    """Test-fire ``slug`` ``times`` times through the runner; every run must succeed."""
    runs = []
    for index in range(times):
        run = await fire_agent(app, sandbox, slug, {"n": index})
        assert run.status == "succeeded", run.error_message
        runs.append(run)
    return runs


@dataclass
class Hook:
    """A webhook source and a trigger binding an agent to it."""

    source: DataSource
    trigger: Trigger


def hook(app: App, slug: str, label: str) -> Hook:
    """A webhook source ``label`` with a trigger firing ``slug`` on every event."""
    source = add_webhook_source(app, "default", label).source
    return Hook(source, create_trigger(app, "default", slug, source.source_id))


async def deliver(app: App, source: DataSource, times: int) -> None:
    """Send ``times`` events to the source (each fires its triggers, in-process)."""
    for index in range(times):
        result = await ingest(app, source, "issue.opened", {"n": index})
        assert all(d.decision == "fired" for d in result.decisions or []), result


def insert_run(
    app: App,
    agent: Agent,
    at: float,
    *,
    tokens_in: int,
    tokens_out: int,
    cost_micros: int | None,
    model: str | None = "openai:ft-support-v3",
    trigger_id: str | None = None,
) -> Run:
    """A finished run created at epoch ``at``, written straight into the ledger."""
    when = datetime.fromtimestamp(at, UTC)
    run = Run(
        run_id=id_at("run", at),
        sandbox_id=agent.sandbox_id,
        agent_id=agent.agent_id,
        agent_slug=agent.slug,
        agent_version=agent.version,
        kind="trigger" if trigger_id else "manual",
        status="succeeded",
        event_payload={},
        trigger_id=trigger_id,
        outcome="answered",
        output_text="done",
        usage=Usage(tokens_in=tokens_in, tokens_out=tokens_out),
        cost_micros=cost_micros,
        duration_ms=1.0,
        model=model,
        created_at=when,
        started_at=when,
        finished_at=when,
        heartbeat_at=when,
    )
    with app.store.begin() as conn:
        run_store.create_run(conn, run)
    return run
