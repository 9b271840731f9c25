"""Shared pieces of the Concierge tests: scripted agents and the situations they ask about,
built through the services (real ledger rows, real sources, real trigger decisions)."""

from __future__ import annotations

from typing import Any

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent

SANDBOX = "default"

ACTING_SCRIPT: dict[str, Any] = {
    "turns": [
        {"text": "Checking the time. ", "tool_calls": [{"name": "clock_now", "arguments": {}}]},
        {"text": "It is {{results.0}}."},
    ]
}
"""A support agent that calls a builtin tool, then answers (outcome ``acted``)."""

TRIAGE_SCRIPT: dict[str, Any] = {"turns": [{"text": "Triaging {{event.title}}"}]}
"""A triage agent that only answers in text."""


async def scripted_agent(
    app: App,
    slug: str,
    script: Any,
    *,
    tool_sources: list[str] | None = None,
    tool_allowlist: list[str] | None = None,
    sandbox: str = SANDBOX,
) -> Agent:
    """Create a scripted agent through the services."""
    agent, _warnings = await create_agent(
        app,
        sandbox,
        AgentSpec(
            slug=slug,
            system_prompt=f"You are the {slug} agent.",
            tool_sources=tool_sources,
            tool_allowlist=tool_allowlist or [],
            model_settings=ModelSettings(script=script),
        ),
    )
    return agent


async def fire(app: App, slug: str, payload: Any, count: int = 1) -> list[Run]:
    """Test-fire ``slug`` ``count`` times; the runs, oldest first."""
    return [await fire_agent(app, SANDBOX, slug, payload) for _ in range(count)]
