"""The demo sandbox: three agents that show the three answers to "why didn't it work?".

* ``support`` is healthy: it looks an order up on a real MCP server and answers.
* ``triage`` has a stale allowlist entry (``orders_create_ticket``): it fires, succeeds,
  and does nothing, and its trace says why with the closest real names.
* ``reporter`` depends on an MCP server that is not running: its source is skipped with
  the reason ``unreachable`` and the run still completes with what it has.

Loading it twice adds runs, not duplicates.
"""

from __future__ import annotations

import socket
import sys
from contextlib import suppress
from dataclasses import dataclass

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Run
from cairn.errors import AlreadyExists
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent
from cairn.services.sources import McpSourceSpec, add_mcp_source
from cairn.store.sandboxes import ensure_sandbox

DEMO_SANDBOX = "demo"

SUPPORT_SCRIPT = {
    "turns": [
        {
            "text": "Let me look that order up. ",
            "tool_calls": [
                {"name": "orders_lookup_order", "arguments": {"order_id": "{{event.order_id}}"}}
            ],
        },
        {"text": "Here is what I found: {{results.-1}}"},
    ]
}
TRIAGE_SCRIPT = {"turns": [{"text": "I would file a ticket, but I have no tool to do it."}]}
REPORTER_SCRIPT = {
    "turns": [
        {"text": "Checking the time. ", "tool_calls": [{"name": "clock_now", "arguments": {}}]},
        {"text": "Report stamped {{results.0}}; the CRM was not reachable."},
    ]
}


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo loaded, for the message ``make run`` prints."""

    sandbox: str
    agents: list[str]
    runs: list[Run]


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def load_demo(app: App, sandbox: str = DEMO_SANDBOX) -> DemoSummary:
    """Create (once) the demo sources and agents in ``sandbox`` and fire a few runs."""
    with app.store.begin() as conn:
        ensure_sandbox(conn, sandbox, "Cairn demo")
    sources = [
        McpSourceSpec(
            label="orders",
            transport="stdio",
            command=sys.executable,
            args=["-m", "cairn.demo.orders_server"],
            namespace="orders",
        ),
        McpSourceSpec(
            label="crm",
            transport="http",
            url=f"http://127.0.0.1:{_unused_port()}/mcp",
            namespace="crm",
        ),
    ]
    for spec in sources:
        with suppress(AlreadyExists):
            await add_mcp_source(app, sandbox, spec)
    agents = [
        AgentSpec(
            slug="support",
            name="Support",
            description="Answers order questions from the order desk.",
            system_prompt="You answer customers' order questions. Look the order up first.",
            tool_sources=["builtin", "orders"],
            tool_allowlist=["orders_lookup_order", "clock_now"],
            model_settings=ModelSettings(script=SUPPORT_SCRIPT),
        ),
        AgentSpec(
            slug="triage",
            name="Triage",
            description="Files a ticket for every incoming bug report.",
            system_prompt="File a ticket for every bug report you receive.",
            tool_sources=["orders"],
            tool_allowlist=["orders_create_ticket"],
            model_settings=ModelSettings(script=TRIAGE_SCRIPT),
        ),
        AgentSpec(
            slug="reporter",
            name="Reporter",
            description="Writes a daily report from the CRM.",
            system_prompt="Write the daily report from the CRM's numbers.",
            tool_sources=["builtin", "crm"],
            tool_allowlist=["crm_*", "clock_now"],
            model_settings=ModelSettings(script=REPORTER_SCRIPT),
        ),
    ]
    for agent_spec in agents:
        with suppress(AlreadyExists):
            await create_agent(app, sandbox, agent_spec)
    runs = [
        await fire_agent(app, sandbox, "support", {"order_id": "A-1001"}, kind="test"),
        await fire_agent(app, sandbox, "support", {"order_id": "A-9999"}, kind="manual"),
        await fire_agent(app, sandbox, "triage", {"title": "broken checkout"}, kind="test"),
        await fire_agent(app, sandbox, "reporter", {"date": "today"}, kind="manual"),
    ]
    return DemoSummary(sandbox, [a.slug for a in agents], runs)
