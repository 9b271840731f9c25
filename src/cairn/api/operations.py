"""Every API operation once, as plain functions over the services.

The HTTP routes (``cairn.api.routes``) and the SDK's in-process transport
(``cairn.client.local``) both call these, so the CLI behaves the same with or without a
server. Each operation checks the caller's role, scopes everything to the caller's sandbox
and returns JSON-ready data (the wire shapes of ``cairn.wire``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.domain.keys import Principal, require
from cairn.services import runs as run_service
from cairn.services.app import App

if TYPE_CHECKING:
    from cairn import wire

JSON = Any


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, in which sandbox (already checked to be theirs)."""

    app: App
    principal: Principal

    @property
    def sandbox(self) -> str:
        """The sandbox every operation is scoped to."""
        return self.principal.sandbox_id


# --- agents ---------------------------------------------------------------------------


def list_agents(caller: Caller) -> JSON:
    """Every agent of the sandbox."""
    from cairn.services.agents import list_agents as list_all

    return [agent.to_dict() for agent in list_all(caller.app, caller.sandbox)]


async def create_agent(caller: Caller, body: wire.AgentCreate) -> JSON:
    """Create an agent (editor); the response carries allowlist warnings."""
    from cairn.domain.agents import ModelSettings
    from cairn.services.agents import AgentSpec
    from cairn.services.agents import create_agent as create

    require(caller.principal, "editor", "create agents")
    spec = AgentSpec(
        slug=body.slug,
        system_prompt=body.system_prompt,
        name=body.name,
        description=body.description,
        tool_sources=body.tool_sources,
        tool_allowlist=body.tool_allowlist,
        model_settings=ModelSettings.from_dict(body.model_settings),
    )
    agent, warnings = await create(caller.app, caller.sandbox, spec)
    return agent.to_dict() | {"warnings": warnings}


def get_agent(caller: Caller, slug: str) -> JSON:
    """One agent."""
    from cairn.services.agents import get_agent as get

    return get(caller.app, caller.sandbox, slug).to_dict()


async def update_agent(caller: Caller, slug: str, body: wire.AgentUpdate) -> JSON:
    """Change only the fields present in the body (editor)."""
    from cairn.services.agents import AgentChanges
    from cairn.services.agents import update_agent as update

    require(caller.principal, "editor", "change agents")
    given = body.model_fields_set
    changes = AgentChanges(
        name=body.name,
        description=body.description,
        system_prompt=body.system_prompt,
        tool_sources=body.tool_sources if "tool_sources" in given else "UNSET",
        tool_allowlist=body.tool_allowlist,
        model_settings=body.model_settings,
    )
    agent, warnings = await update(caller.app, caller.sandbox, slug, changes)
    return agent.to_dict() | {"warnings": warnings}


def set_archived(caller: Caller, slug: str, archived: bool) -> JSON:
    """Archive or restore an agent (editor; reversible)."""
    from cairn.services.agents import set_archived as archive

    require(caller.principal, "editor", "archive agents")
    return archive(caller.app, caller.sandbox, slug, archived).to_dict()


async def agent_tools(caller: Caller, slug: str) -> JSON:
    """The catalog the agent would see now, with the trace."""
    from cairn.services.agents import agent_catalog

    return (await agent_catalog(caller.app, caller.sandbox, slug)).to_dict()


# --- firing ---------------------------------------------------------------------------


async def test_agent(
    caller: Caller, slug: str, event_payload: Any, traceparent: str | None = None
) -> JSON:
    """Test-fire synchronously (viewers may): the finished run row."""
    run = await run_service.fire_agent(
        caller.app, caller.sandbox, slug, event_payload, traceparent=traceparent
    )
    return run.to_dict()


async def fire_agent(
    caller: Caller, slug: str, event_payload: Any, traceparent: str | None = None
) -> JSON:
    """Fire asynchronously (editor): the run id at once. Without a server's workers
    (in-process) the run executes before this returns."""
    require(caller.principal, "editor", "fire agents")
    fire = run_service.start_fire(
        caller.app, caller.sandbox, slug, event_payload, kind="manual", traceparent=traceparent
    )
    if not fire.queued:
        await caller.app.runner.execute(fire.run, fire.agent, fire.available)
    return {"run_id": fire.run.run_id, "status": fire.run.status, "agent_slug": slug}


ONESHOT_AGENT = "oneshot"


async def oneshot(
    caller: Caller, body: wire.OneShotRequest, traceparent: str | None = None
) -> JSON:
    """A one-shot turn (editor): the finished run, or ``{run_id, …}`` at once when not
    waiting. Without ``agent``, the ad-hoc ``oneshot`` agent is set up from the body."""
    require(caller.principal, "editor", "fire agents")
    slug = body.agent or await _adhoc_agent(caller, body)
    if body.wait:
        run = await run_service.fire_agent(
            caller.app, caller.sandbox, slug, body.prompt, kind="oneshot", traceparent=traceparent
        )
        return run.to_dict()
    fire = run_service.start_fire(
        caller.app, caller.sandbox, slug, body.prompt, kind="oneshot", traceparent=traceparent
    )
    if not fire.queued:
        await caller.app.runner.execute(fire.run, fire.agent, fire.available)
    return {"run_id": fire.run.run_id, "status": fire.run.status, "agent_slug": slug}


async def _adhoc_agent(caller: Caller, body: wire.OneShotRequest) -> str:
    from cairn.domain.agents import ModelSettings
    from cairn.errors import NotFound
    from cairn.services.agents import AgentChanges, AgentSpec, create_agent, update_agent
    from cairn.services.agents import set_archived as archive

    prompt = body.system_prompt or "You are a helpful operator's assistant. Use your tools."
    try:
        await update_agent(
            caller.app,
            caller.sandbox,
            ONESHOT_AGENT,
            AgentChanges(
                system_prompt=prompt,
                tool_sources=body.tool_sources,
                tool_allowlist=body.tool_allowlist or [],
                model_settings=body.model_settings or {},
                replace_settings=True,  # each one-shot's settings, not the last one's
            ),
        )
    except NotFound:
        await create_agent(
            caller.app,
            caller.sandbox,
            AgentSpec(
                slug=ONESHOT_AGENT,
                system_prompt=prompt,
                name="One-shot runs",
                description="Ad-hoc agent behind 'cairn run'; archived so no trigger fires it.",
                tool_sources=body.tool_sources,
                tool_allowlist=body.tool_allowlist or [],
                model_settings=ModelSettings.from_dict(body.model_settings or {}),
            ),
        )
        archive(caller.app, caller.sandbox, ONESHOT_AGENT, True)
    return ONESHOT_AGENT


async def replay_run(caller: Caller, run_id: str, event_payload: Any) -> JSON:
    """Re-fire a run's event (or an edited one) as a test run pointing back at it."""
    run = await run_service.replay_run(caller.app, caller.sandbox, run_id, event_payload)
    return run.to_dict()


def cancel_run(caller: Caller, run_id: str) -> JSON:
    """Cancel a live run (editor)."""
    require(caller.principal, "editor", "cancel runs")
    return run_service.cancel_run(caller.app, caller.sandbox, run_id).to_dict()


# --- reading the ledger ---------------------------------------------------------------


def list_runs(
    caller: Caller,
    *,
    agent: str | None = None,
    status: str | None = None,
    trigger_id: str | None = None,
    kind: str | None = None,
    before: str | None = None,
    since: str | None = None,
    limit: int = 20,
) -> JSON:
    """A page of runs, newest first, with the cursor for the next page."""
    from cairn.durations import parse_duration
    from cairn.errors import UsageError

    if not 1 <= limit <= 1000:
        raise UsageError(f"limit {limit} is out of range: use 1 to 1000")
    query = run_service.RunQuery(
        agent_slug=agent,
        status=status,  # type: ignore[arg-type]
        trigger_id=trigger_id,
        kind=kind,  # type: ignore[arg-type]
        before=before,
        since_s=parse_duration(since) if since else None,
        limit=limit,
    )
    found = run_service.list_runs(caller.app, caller.sandbox, query)
    return {
        "runs": [run.to_dict() for run in found],
        "next_before": found[-1].run_id if len(found) == limit else None,
    }


def get_run(caller: Caller, run_id: str) -> JSON:
    """One run row."""
    return run_service.get_run(caller.app, caller.sandbox, run_id).to_dict()


def get_trace(caller: Caller, run_id: str, agent: str | None = None) -> JSON:
    """The run's tool-resolution trace (``None`` if it ended before tools resolved)."""
    from cairn.errors import NotFound

    run = run_service.get_run(caller.app, caller.sandbox, run_id)
    if agent is not None and run.agent_slug != agent:
        raise NotFound(f"no run {run_id!r} for agent {agent!r}")
    return run.tool_resolution_trace.to_dict() if run.tool_resolution_trace else None


def get_events(caller: Caller, run_id: str, after: int = 0) -> JSON:
    """The run's stored events after sequence ``after``."""
    events = run_service.get_run_events(caller.app, caller.sandbox, run_id, after)
    return [event.to_dict() for event in events]


# --- sources --------------------------------------------------------------------------


def list_sources(caller: Caller) -> JSON:
    """Every source (builtin first); secrets never included."""
    from cairn.services.sources import list_sources as list_all

    return [source.to_dict() for source in list_all(caller.app, caller.sandbox)]


def get_source(caller: Caller, ref: str) -> JSON:
    """One source by id or label."""
    from cairn.services.sources import get_source as get

    return get(caller.app, caller.sandbox, ref).to_dict()


async def add_source(caller: Caller, body: wire.SourceCreate) -> JSON:
    """Register an MCP server and health-check it (editor)."""
    from cairn.services.sources import McpSourceSpec, add_mcp_source

    require(caller.principal, "editor", "add sources")
    spec = McpSourceSpec(**body.model_dump())
    if spec.transport == "stdio":
        from cairn.services.sources import require_stdio_allowed

        require_stdio_allowed(caller.app, caller.principal, spec.command or "")
    return (await add_mcp_source(caller.app, caller.sandbox, spec)).to_dict()


async def test_source(caller: Caller, ref: str) -> JSON:
    """Health-check a source now."""
    from cairn.services.sources import check_source

    return (await check_source(caller.app, caller.sandbox, ref)).to_dict()


def revoke_source(caller: Caller, ref: str) -> JSON:
    """Forget a source's binding and secret (owner: it destroys the stored secret)."""
    from cairn.services.sources import revoke_source as revoke

    require(caller.principal, "owner", "revoke sources")
    return revoke(caller.app, caller.sandbox, ref).to_dict()


# --- sandboxes and keys ---------------------------------------------------------------


def list_sandboxes(caller: Caller) -> JSON:
    """The caller's sandbox; owners of ``default`` (the instance's admins) see them all."""
    from cairn.services.access import list_sandboxes as list_all

    everything = list_all(caller.app)
    admin = caller.principal.sandbox_id == "default" and caller.principal.role == "owner"
    return [
        {"sandbox_id": sandbox_id, "name": name}
        for sandbox_id, name in everything
        if admin or sandbox_id == caller.sandbox
    ]


def create_sandbox(caller: Caller, sandbox_id: str, name: str | None) -> JSON:
    """A new sandbox (owners of ``default`` only)."""
    from cairn.errors import Forbidden
    from cairn.services.access import create_sandbox as create

    if not (caller.principal.sandbox_id == "default" and caller.principal.role == "owner"):
        raise Forbidden("only an owner key of the 'default' sandbox can create sandboxes")
    create(caller.app, sandbox_id, name)
    return {"sandbox_id": sandbox_id, "name": name or sandbox_id}


def list_keys(caller: Caller) -> JSON:
    """The sandbox's API keys (owner)."""
    from cairn.services.access import list_keys as list_all

    require(caller.principal, "owner", "list API keys")
    return [key.to_dict() for key in list_all(caller.app, caller.sandbox)]


def create_key(caller: Caller, name: str, role: str, sandbox: str | None = None) -> JSON:
    """A new key for the caller's sandbox (owner), or for another sandbox (admin only)."""
    from cairn.errors import Forbidden
    from cairn.services.access import create_key as create

    require(caller.principal, "owner", "create API keys")
    target = sandbox or caller.sandbox
    if target != caller.sandbox and caller.principal.sandbox_id != "default":
        raise Forbidden("only an owner key of the 'default' sandbox can make keys elsewhere")
    key, token = create(caller.app, target, name, role)  # type: ignore[arg-type]
    return {"key": key.to_dict(), "token": token}


def revoke_key(caller: Caller, key_id: str) -> JSON:
    """Revoke a key of the sandbox (owner)."""
    from cairn.services.access import revoke_key as revoke

    require(caller.principal, "owner", "revoke API keys")
    return revoke(caller.app, caller.sandbox, key_id).to_dict()


# --- triggers and events ------------------------------------------------------------------


def create_trigger(caller: Caller, slug: str, body: wire.TriggerCreate) -> JSON:
    """Bind agent ``slug`` to a source's events (editor)."""
    from cairn.services.triggers import create_trigger as create

    require(caller.principal, "editor", "create triggers")
    trigger = create(
        caller.app,
        caller.sandbox,
        slug,
        body.data_source_id,
        event_type_filter=body.event_type_filter,
        filter_config=body.filter_config,
        rate_limit_per_hour=body.rate_limit_per_hour,
    )
    return trigger.to_dict()


def list_triggers(caller: Caller, slug: str | None = None) -> JSON:
    """The agent's triggers, or the sandbox's."""
    from cairn.services.triggers import list_triggers as list_all

    return [t.to_dict() for t in list_all(caller.app, caller.sandbox, slug)]


def get_trigger(caller: Caller, trigger_id: str) -> JSON:
    """One trigger."""
    from cairn.services.triggers import get_trigger as get

    return get(caller.app, caller.sandbox, trigger_id).to_dict()


def update_trigger(caller: Caller, trigger_id: str, body: wire.TriggerUpdate) -> JSON:
    """Change only the fields present (editor); pausing and resuming are reversible."""
    from cairn.services.triggers import UNSET
    from cairn.services.triggers import update_trigger as update

    require(caller.principal, "editor", "change triggers")
    given = body.model_fields_set
    trigger = update(
        caller.app,
        caller.sandbox,
        trigger_id,
        event_type_filter=body.event_type_filter,
        filter_config=body.filter_config if "filter_config" in given else UNSET,
        rate_limit_per_hour=body.rate_limit_per_hour if "rate_limit_per_hour" in given else UNSET,
        status=body.status,
    )
    return trigger.to_dict()


def destroy_trigger(caller: Caller, trigger_id: str) -> JSON:
    """Delete a trigger for good (owner)."""
    from cairn.services.triggers import destroy_trigger as destroy

    require(caller.principal, "owner", "destroy triggers")
    return destroy(caller.app, caller.sandbox, trigger_id).to_dict()


def list_events(
    caller: Caller, source: str | None = None, before: str | None = None, limit: int = 20
) -> JSON:
    """Events newest first, with every trigger's decision."""
    from cairn.errors import UsageError
    from cairn.store import events as event_store
    from cairn.store import sources as source_store

    if not 1 <= int(limit) <= 500:
        raise UsageError(f"limit {limit} is out of range: use 1 to 500")
    with caller.app.store.connect() as conn:
        source_id = (
            source_store.get_source(conn, caller.sandbox, source).source_id if source else None
        )
        found = event_store.list_events(
            conn, caller.sandbox, source_id=source_id, before=before, limit=int(limit)
        )
    return {
        "events": [e.to_dict() for e in found],
        "next_before": found[-1].event_id if len(found) == int(limit) else None,
    }


def get_event(caller: Caller, event_id: str) -> JSON:
    """One event with every trigger's decision."""
    from cairn.store import events as event_store

    with caller.app.store.connect() as conn:
        return event_store.get_event(conn, caller.sandbox, event_id).to_dict()


def add_webhook(caller: Caller, body: wire.WebhookCreate) -> JSON:
    """A webhook source (editor); its signing secret is in this response only."""
    from cairn.services.webhooks import add_webhook_source

    require(caller.principal, "editor", "add sources")
    made = add_webhook_source(
        caller.app,
        caller.sandbox,
        body.label,
        provider=body.provider,
        secret=body.signing_secret,
        options=body.options,
    )
    return {
        "source": made.source.to_dict(),
        "path": made.path,
        "provider": made.source.config["provider"],
        "signing_secret": made.secret,
    }


def rotate_webhook_secret(caller: Caller, ref: str, body: wire.SecretRotate) -> JSON:
    """A new signing secret for a webhook source (editor), the old one valid for a window."""
    from datetime import timedelta

    from cairn.durations import parse_duration
    from cairn.services.webhooks import rotate_secret

    require(caller.principal, "editor", "rotate source secrets")
    text = body.overlap.strip()
    overlap = timedelta(seconds=0 if text in ("0", "none") else parse_duration(text))
    rotated = rotate_secret(
        caller.app, caller.sandbox, ref, secret=body.signing_secret, overlap=overlap
    )
    until = rotated.previous_valid_until
    return {
        "source": rotated.source.to_dict(),
        "signing_secret": rotated.secret,
        "previous_valid_until": until.isoformat() if until else None,
    }


def add_schedule(caller: Caller, label: str, cron: str, timezone: str) -> JSON:
    """A schedule source emitting ``schedule.tick`` (editor)."""
    from cairn.services.schedules import add_schedule_source

    require(caller.principal, "editor", "add sources")
    return add_schedule_source(caller.app, caller.sandbox, label, cron, timezone).to_dict()


def list_credentials(caller: Caller) -> JSON:
    """Backends with a stored API key (never the keys)."""
    from cairn.services.credentials import list_credentials as list_all

    return list_all(caller.app, caller.sandbox)


def set_credential(caller: Caller, backend: str, api_key: str) -> JSON:
    """Store a model backend's API key for the sandbox (owner)."""
    from cairn.services.credentials import set_credential as store

    require(caller.principal, "owner", "store credentials")
    return store(caller.app, caller.sandbox, backend, api_key)


def delete_credential(caller: Caller, backend: str) -> JSON:
    """Forget a stored key (owner)."""
    from cairn.services.credentials import delete_credential as forget

    require(caller.principal, "owner", "delete credentials")
    forget(caller.app, caller.sandbox, backend)
    return {"backend": backend, "deleted": True}
