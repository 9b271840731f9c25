"""Agent operations: create, update, archive, and the live tool catalog."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cairn.domain.agents import Agent, ModelSettings, validate_slug
from cairn.domain.trace import MissingEntry, ToolResolutionTrace
from cairn.errors import UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import agents as agent_store
from cairn.store.sandboxes import require_sandbox


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Fields for a new agent (validated on construction of the ``Agent``)."""

    slug: str
    system_prompt: str
    name: str | None = None
    description: str = ""
    tool_sources: list[str] | None = None
    tool_allowlist: list[str] = field(default_factory=list)
    model_settings: ModelSettings = field(default_factory=ModelSettings)


@dataclass(frozen=True, slots=True)
class AgentChanges:
    """An update: only fields that are not ``UNSET`` change. ``tool_sources`` may be set to
    ``None`` (back to the sandbox default), so it uses a sentinel rather than ``None``."""

    name: str | None = None
    description: str | None = None
    system_prompt: str | None = None
    tool_sources: Any = "UNSET"
    tool_allowlist: list[str] | None = None
    model_settings: dict[str, Any] | None = None
    replace_settings: bool = False
    """``model_settings`` replaces the stored settings instead of being merged into them."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The tools an agent would see right now, and the trace that explains them."""

    agent: Agent
    trace: ToolResolutionTrace
    tools: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``cairn agent tools --json``."""
        return {"agent": self.agent.slug, "tools": self.tools, "trace": self.trace.to_dict()}


def _check_settings(settings: ModelSettings) -> None:
    from cairn.models.backends import check_backend_name

    check_backend_name(settings.backend)
    if settings.backend == "scripted":
        from cairn.models.scripted import parse_script

        parse_script(settings.script)


async def create_agent(app: App, sandbox_id: str, spec: AgentSpec) -> tuple[Agent, list[str]]:
    """Store a new agent; returns it and warnings (allowlist entries that match no tool now)."""
    validate_slug(spec.slug)
    if not spec.system_prompt.strip():
        raise UsageError("the system prompt is empty: pass --prompt or --prompt-file")
    _check_settings(spec.model_settings)
    now = datetime.now(UTC)
    agent = Agent(
        agent_id=new_id("agt"),
        sandbox_id=sandbox_id,
        slug=spec.slug,
        name=spec.name or spec.slug,
        description=spec.description,
        system_prompt=spec.system_prompt,
        tool_sources=spec.tool_sources,
        tool_allowlist=list(spec.tool_allowlist),
        model_settings=spec.model_settings,
        created_at=now,
        updated_at=now,
    )
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        agent_store.create_agent(conn, agent)
    return agent, await allowlist_warnings(app, agent)


async def update_agent(
    app: App, sandbox_id: str, slug: str, changes: AgentChanges
) -> tuple[Agent, list[str]]:
    """Change only the named fields. Any change that alters what a run does (prompt, model
    settings and script, tool sources, allowlist) bumps ``version``, which every run row
    keeps, so a run can be tied to the configuration it ran with; a new name does not."""
    with app.store.begin() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        settings = agent.model_settings
        if changes.replace_settings and changes.model_settings is not None:
            settings = ModelSettings.from_dict(changes.model_settings)
            _check_settings(settings)
        elif changes.model_settings:
            merged = settings.to_dict() | changes.model_settings
            settings = ModelSettings.from_dict(merged)
            _check_settings(settings)
        if changes.system_prompt is not None and not changes.system_prompt.strip():
            raise UsageError("the system prompt is empty")
        given = {
            name: value
            for name in ("name", "description", "system_prompt", "tool_allowlist")
            if (value := getattr(changes, name)) is not None
        }
        if changes.tool_sources != "UNSET":
            given["tool_sources"] = changes.tool_sources
        updated = replace(agent, **given, model_settings=settings)
        if _behaviour(updated) != _behaviour(agent):
            updated = replace(updated, version=agent.version + 1)
        saved = agent_store.save_agent(conn, updated)
    warnings = await allowlist_warnings(app, saved) if changes.tool_allowlist is not None else []
    return saved, warnings


def _behaviour(agent: Agent) -> tuple[Any, ...]:
    """What decides what a run of ``agent`` does (its name and description do not)."""
    return (
        agent.system_prompt,
        agent.model_settings.to_dict(),
        agent.tool_sources,
        agent.tool_allowlist,
    )


def get_agent(app: App, sandbox_id: str, slug: str) -> Agent:
    """One agent by slug."""
    with app.store.connect() as conn:
        return agent_store.get_agent(conn, sandbox_id, slug)


def list_agents(app: App, sandbox_id: str) -> list[Agent]:
    """Every agent of the sandbox, archived ones included."""
    with app.store.connect() as conn:
        return agent_store.list_agents(conn, sandbox_id)


def set_archived(app: App, sandbox_id: str, slug: str, archived: bool) -> Agent:
    """Archive (never fired by triggers) or restore an agent; reversible."""
    with app.store.begin() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        return agent_store.save_agent(
            conn, replace(agent, status="archived" if archived else "active")
        )


async def agent_catalog(app: App, sandbox_id: str, slug: str) -> Catalog:
    """Resolve the agent's tools as a run would, without running it."""
    agent = get_agent(app, sandbox_id, slug)
    return await catalog_for(app, agent)


async def catalog_for(app: App, agent: Agent) -> Catalog:
    """The catalog of an agent object (stored or about to be)."""
    from cairn.domain.sources import uses_cairn_tools
    from cairn.services.sources import available_sources
    from cairn.tools.resolution import resolve_tools

    if uses_cairn_tools(agent.tool_sources):  # stored on first need, as a question would
        from cairn.services.concierge.source import ensure_cairn_source

        ensure_cairn_source(app, agent.sandbox_id)
    async with resolve_tools(
        selection=agent.tool_sources,
        allowlist=agent.tool_allowlist,
        available=available_sources(app, agent.sandbox_id),
        context=app.tool_context,
        pool=app.tool_pool,
    ) as tools:
        return Catalog(
            agent,
            tools.trace,
            [
                {"name": s.name, "description": s.description, "input_schema": s.input_schema}
                for s in tools.specs
            ],
        )


def describe_missing(entry: MissingEntry) -> str:
    """One line for a stale allowlist entry, with suggestions."""
    line = f"allowlist entry {entry.entry!r} matches no tool the agent can get now"
    if entry.possibly_from_skipped:
        line += f" (its source {entry.possibly_from_skipped!r} was skipped)"
    if entry.suggestions:
        line += f"; did you mean: {', '.join(entry.suggestions)}?"
    return line


async def allowlist_warnings(app: App, agent: Agent) -> list[str]:
    """Warnings for allowlist entries that match nothing in today's catalog (allowed, but
    almost always a typo or a renamed tool)."""
    if not agent.tool_allowlist:
        return []
    catalog = await catalog_for(app, agent)
    return [describe_missing(entry) for entry in catalog.trace.allowlist_missing_entries]
