"""Shared steps of the explain/doctor tests: scripted agents made and fired through the
services, MCP sources registered for real, and a check that a finding cites its evidence."""

from __future__ import annotations

from typing import Any

from cairn.domain.agents import ModelSettings
from cairn.domain.diagnosis import Explanation, Finding
from cairn.domain.runs import Run
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.diagnosis import explain_run
from cairn.services.runs import fire_agent
from cairn.services.sources import McpSourceSpec, add_mcp_source

SANDBOX = "default"
ORDERS_TOKEN = "orders-secret-token"


async def make_agent(
    app: App,
    script: Any,
    *,
    slug: str = "support",
    system_prompt: str = "You help customers.",
    tool_sources: list[str] | None = None,
    tool_allowlist: list[str] | None = None,
    **settings: Any,
) -> None:
    """A scripted agent in the default sandbox."""
    await create_agent(
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


async def fire(app: App, slug: str = "support", payload: Any = None) -> Run:
    """Test-fire the agent and wait for its run."""
    return await fire_agent(app, SANDBOX, slug, {} if payload is None else payload)


async def fire_and_explain(app: App, slug: str = "support", payload: Any = None) -> Explanation:
    """Fire, then explain the run."""
    run = await fire(app, slug, payload)
    return explain_run(app, SANDBOX, run.run_id)


async def add_http_source(
    app: App,
    label: str,
    url: str,
    *,
    token: str | None = ORDERS_TOKEN,
    namespace: str | None = None,
) -> None:
    """Register an HTTP MCP server (health-checked, as ``cairn source add`` does)."""
    await add_mcp_source(
        app,
        SANDBOX,
        McpSourceSpec(
            label=label,
            transport="http",
            url=url,
            auth="bearer" if token else "none",
            token=token,
            namespace=namespace or label,
        ),
    )


def only(explanation: Explanation, code: str) -> Finding:
    """The one finding with ``code`` (fails listing what there was)."""
    found = [f for f in explanation.findings if f.code == code]
    assert len(found) == 1, f"expected one {code!r}, got {explanation.codes()}"
    return found[0]
