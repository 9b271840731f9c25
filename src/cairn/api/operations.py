"""The handlers of the API's operations, as plain functions over the services.

``cairn.api.table`` declares each operation once (path, role, wire models) with its
handler here; every transport runs them through it, so the CLI behaves the same with or
without a server. A handler scopes everything to the caller's sandbox (the table has
checked the role) and returns JSON-ready data (the wire shapes of ``cairn.wire``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.domain.keys import Principal
from cairn.services import runs as run_service
from cairn.services.app import App

if TYPE_CHECKING:
    from cairn import wire
    from cairn.domain.runs import Run

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

    settings = ModelSettings.from_dict(body.model_settings)
    spec = AgentSpec(**body.model_dump(exclude={"model_settings"}), model_settings=settings)
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

    sources = body.tool_sources if "tool_sources" in body.model_fields_set else "UNSET"
    changes = AgentChanges(**body.model_dump(exclude={"tool_sources"}), tool_sources=sources)
    agent, warnings = await update(caller.app, caller.sandbox, slug, changes)
    return agent.to_dict() | {"warnings": warnings}


def archive_agent(caller: Caller, slug: str) -> JSON:
    """Archive an agent (reversible)."""
    from cairn.services.agents import set_archived

    return set_archived(caller.app, caller.sandbox, slug, True).to_dict()


def unarchive_agent(caller: Caller, slug: str) -> JSON:
    """Restore an archived agent."""
    from cairn.services.agents import set_archived

    return set_archived(caller.app, caller.sandbox, slug, False).to_dict()


async def agent_tools(caller: Caller, slug: str) -> JSON:
    """The catalog the agent would see now, with the trace."""
    from cairn.services.agents import agent_catalog

    return (await agent_catalog(caller.app, caller.sandbox, slug)).to_dict()


# --- firing ---------------------------------------------------------------------------


async def test_agent(
    caller: Caller, slug: str, body: wire.FireRequest, traceparent: str | None = None
) -> JSON:
    """Test-fire synchronously (viewers may): the finished run row."""
    run = await run_service.fire_agent(
        caller.app, caller.sandbox, slug, body.event_payload, traceparent=traceparent
    )
    return run.to_dict()


async def fire_agent(
    caller: Caller, slug: str, body: wire.FireRequest, traceparent: str | None = None
) -> JSON:
    """Fire asynchronously (editor): the run id at once. Without a server's workers
    (in-process) the run executes before this returns."""
    run = await run_service.start_run(
        caller.app, caller.sandbox, slug, body.event_payload, kind="manual", traceparent=traceparent
    )
    return _accepted(run)


def _accepted(run: Run) -> JSON:
    """A fire accepted: the run to follow (``wire.FireAccepted``)."""
    return {"run_id": run.run_id, "status": run.status, "agent_slug": run.agent_slug}


ONESHOT_AGENT = "oneshot"


async def oneshot(
    caller: Caller, body: wire.OneShotRequest, traceparent: str | None = None
) -> JSON:
    """A one-shot turn (editor): the finished run, or ``{run_id, …}`` at once when not
    waiting. Without ``agent``, the ad-hoc ``oneshot`` agent is set up from the body."""
    slug = body.agent or await _adhoc_agent(caller, body)
    fire = run_service.fire_agent if body.wait else run_service.start_run
    run = await fire(
        caller.app, caller.sandbox, slug, body.prompt, kind="oneshot", traceparent=traceparent
    )
    return run.to_dict() if body.wait else _accepted(run)


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


async def replay_run(caller: Caller, run_id: str, body: wire.ReplayRequest) -> JSON:
    """Re-fire a run's event (or an edited one) as a test run pointing back at it."""
    run = await run_service.replay_run(caller.app, caller.sandbox, run_id, body.event_payload)
    return run.to_dict()


async def cancel_run(caller: Caller, run_id: str) -> JSON:
    """Cancel a live run (editor). Async so that, in the server, it runs on the event loop
    that runs the run."""
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


def list_agent_runs(
    caller: Caller,
    slug: str,
    *,
    status: str | None = None,
    trigger_id: str | None = None,
    kind: str | None = None,
    before: str | None = None,
    since: str | None = None,
    limit: int = 20,
) -> JSON:
    """A page of the agent's runs, newest first."""
    return list_runs(
        caller,
        agent=slug,
        status=status,
        trigger_id=trigger_id,
        kind=kind,
        before=before,
        since=since,
        limit=limit,
    )


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


def get_agent_run_trace(caller: Caller, slug: str, run_id: str) -> JSON:
    """The trace of one of the agent's runs (``NotFound`` for another agent's run)."""
    return get_trace(caller, run_id, agent=slug)


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

    return revoke(caller.app, caller.sandbox, ref).to_dict()


# --- sandboxes and keys ---------------------------------------------------------------


def whoami(caller: Caller) -> JSON:
    """The caller's sandbox and role, as its key grants them."""
    principal = caller.principal
    return {"sandbox_id": principal.sandbox_id, "role": principal.role, "key_id": principal.key_id}


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


def create_sandbox(caller: Caller, body: wire.SandboxCreate) -> JSON:
    """A new sandbox (owners of ``default`` only)."""
    from cairn.errors import Forbidden
    from cairn.services.access import create_sandbox as create

    if not (caller.principal.sandbox_id == "default" and caller.principal.role == "owner"):
        raise Forbidden("only an owner key of the 'default' sandbox can create sandboxes")
    create(caller.app, body.sandbox_id, body.name)
    return {"sandbox_id": body.sandbox_id, "name": body.name or body.sandbox_id}


def list_keys(caller: Caller) -> JSON:
    """The sandbox's API keys (owner)."""
    from cairn.services.access import list_keys as list_all

    return [key.to_dict() for key in list_all(caller.app, caller.sandbox)]


def create_key(caller: Caller, body: wire.ApiKeyCreate) -> JSON:
    """A new key for the caller's sandbox (owner)."""
    from cairn.services.access import create_key as create

    key, token = create(caller.app, caller.sandbox, body.name, body.role)
    return {"key": key.to_dict(), "token": token}


def revoke_key(caller: Caller, key_id: str) -> JSON:
    """Revoke a key of the sandbox (owner)."""
    from cairn.services.access import revoke_key as revoke

    return revoke(caller.app, caller.sandbox, key_id).to_dict()


# --- triggers and events ------------------------------------------------------------------


def create_trigger(caller: Caller, slug: str, body: wire.TriggerCreate) -> JSON:
    """Bind agent ``slug`` to a source's events (editor)."""
    from cairn.services.triggers import create_trigger as create

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


def list_agent_triggers(caller: Caller, slug: str) -> JSON:
    """The agent's triggers."""
    return list_triggers(caller, slug)


def get_trigger(caller: Caller, trigger_id: str) -> JSON:
    """One trigger."""
    from cairn.services.triggers import get_trigger as get

    return get(caller.app, caller.sandbox, trigger_id).to_dict()


def update_trigger(caller: Caller, trigger_id: str, body: wire.TriggerUpdate) -> JSON:
    """Change only the fields present (editor); pausing and resuming are reversible."""
    from cairn.services.triggers import UNSET
    from cairn.services.triggers import update_trigger as update

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

    return destroy(caller.app, caller.sandbox, trigger_id).to_dict()


def list_events(
    caller: Caller, source: str | None = None, before: str | None = None, limit: int = 20
) -> JSON:
    """Events newest first, with every trigger's decision."""
    from cairn.errors import UsageError
    from cairn.services.events import list_events as list_some

    if not 1 <= int(limit) <= 500:
        raise UsageError(f"limit {limit} is out of range: use 1 to 500")
    found = list_some(caller.app, caller.sandbox, source, before, int(limit))
    return {
        "events": [e.to_dict() for e in found],
        "next_before": found[-1].event_id if len(found) == int(limit) else None,
    }


def get_event(caller: Caller, event_id: str) -> JSON:
    """One event with every trigger's decision."""
    from cairn.services.events import get_event as get

    return get(caller.app, caller.sandbox, event_id).to_dict()


def add_webhook(caller: Caller, body: wire.WebhookCreate) -> JSON:
    """A webhook source (editor); its signing secret is in this response only."""
    from cairn.services.webhooks import add_webhook_source

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


def add_schedule(caller: Caller, body: wire.ScheduleCreate) -> JSON:
    """A schedule source emitting ``schedule.tick`` (editor)."""
    from cairn.services.schedules import add_schedule_source

    made = add_schedule_source(caller.app, caller.sandbox, body.label, body.cron, body.timezone)
    return made.to_dict()


def list_credentials(caller: Caller) -> JSON:
    """Backends with a stored API key (never the keys)."""
    from cairn.services.credentials import list_credentials as list_all

    return list_all(caller.app, caller.sandbox)


def set_credential(caller: Caller, backend: str, body: wire.CredentialSet) -> JSON:
    """Store a model backend's API key for the sandbox (owner)."""
    from cairn.services.credentials import set_credential as store

    return store(caller.app, caller.sandbox, backend, body.api_key)


def delete_credential(caller: Caller, backend: str) -> JSON:
    """Forget a stored key (owner)."""
    from cairn.services.credentials import delete_credential as forget

    forget(caller.app, caller.sandbox, backend)
    return {"backend": backend, "deleted": True}


# --- status ---------------------------------------------------------------------------


def get_status(caller: Caller) -> JSON:
    """Backlog of the caller's sandbox, workers alive with their last heartbeat."""
    from cairn.services.status import execution_status

    return execution_status(caller.app, caller.sandbox)


def get_telemetry(caller: Caller) -> JSON:
    """This process's OpenTelemetry export (``cairn.telemetry.export_status``): in the
    server, what the server sent and dropped; in-process, the calling process's own
    exporter. Any valid key may read it: nothing in it belongs to a sandbox."""
    from cairn.telemetry import export_status

    return export_status()
