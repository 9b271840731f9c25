"""The handlers of the API's operations, as plain functions over the services.

``cairn.api.table`` declares each operation once (path, role, wire models) with its
handler here; every transport runs them through it, so the CLI behaves the same with or
without a server. A handler scopes everything to the caller's sandbox (the table has
checked the role) and returns JSON-ready data (the wire shapes of ``cairn.wire``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
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


def served(target: str, *, awaits: bool = False) -> Callable[..., Any]:
    """A handler that only hands the call to a service (``module:function``): called with
    the App, the caller's sandbox, the path fields in the path's order and the body's
    fields, it answers the JSON form of the result (``to_dict()``, of each item of a list).
    ``awaits`` marks a coroutine service, so the routes run it on the event loop."""
    module, _, name = target.partition(":")

    @functools.cache
    def service() -> Callable[..., Any]:  # imported at the first call, not on the cold path
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def call(caller: Caller, fields: tuple[Any, ...], body: Any) -> Any:
        given = {} if body is None else body.model_dump()
        return service()(caller.app, caller.sandbox, *fields, **given)

    async def handle_async(caller: Caller, *path: Any, body: Any = None, **named: Any) -> JSON:
        return as_json(await call(caller, (*path, *named.values()), body))

    def handle(caller: Caller, *path: Any, body: Any = None, **named: Any) -> JSON:
        return as_json(call(caller, (*path, *named.values()), body))

    handler = handle_async if awaits else handle
    SERVED[handler] = target
    return handler


SERVED: dict[Callable[..., Any], str] = {}
"""The service each ``served`` handler calls (the operation table's test checks they fit)."""


def as_json(result: Any) -> JSON:
    """A service's answer as JSON-ready data: domain objects through their ``to_dict``."""
    if isinstance(result, list):
        return [as_json(item) for item in result]
    return result.to_dict() if hasattr(result, "to_dict") else result


# --- operations a service answers as it is ---------------------------------------------

list_agents = served("cairn.services.agents:list_agents")
get_agent = served("cairn.services.agents:get_agent")
agent_tools = served("cairn.services.agents:agent_catalog", awaits=True)
get_run = served("cairn.services.runs:get_run")
list_sources = served("cairn.services.sources:list_sources")
get_source = served("cairn.services.sources:get_source")
test_source = served("cairn.services.sources:check_source", awaits=True)
revoke_source = served("cairn.services.sources:revoke_source")
list_keys = served("cairn.services.access:list_keys")
revoke_key = served("cairn.services.access:revoke_key")
list_triggers = served("cairn.services.triggers:list_triggers")
get_trigger = served("cairn.services.triggers:get_trigger")
destroy_trigger = served("cairn.services.triggers:destroy_trigger")
get_event = served("cairn.services.events:get_event")
list_credentials = served("cairn.services.credentials:list_credentials")
get_status = served("cairn.services.status:execution_status")
explain_run = served("cairn.services.diagnosis:explain_run")
explain_event = served("cairn.services.diagnosis:explain_event")
why_not_fired = served("cairn.services.diagnosis:why_not_fired")
list_connections = served("cairn.services.connections:list_connections")
add_connection = served("cairn.services.connections:add_connection")
revoke_connection = served("cairn.services.connections:revoke_connection")
add_integration_source = served("cairn.services.connections:add_integration_source")
list_thresholds = served("cairn.services.usage:list_thresholds")
get_threshold = served("cairn.services.usage:get_threshold")
put_threshold = served("cairn.services.usage:set_threshold")
list_runaways = served("cairn.services.usage:runaway_agents")
enforce = served("cairn.services.usage:enforce_thresholds")
list_agent_triggers = list_triggers  # with the agent's slug from the path


# --- agents ---------------------------------------------------------------------------


async def create_agent(caller: Caller, body: wire.AgentCreate) -> JSON:
    """Create an agent (editor); the response carries allowlist warnings."""
    from cairn.domain.agents import ModelSettings
    from cairn.services.agents import AgentSpec
    from cairn.services.agents import create_agent as create

    settings = ModelSettings.from_dict(body.model_settings)
    spec = AgentSpec(**body.model_dump(exclude={"model_settings"}), model_settings=settings)
    agent, warnings = await create(caller.app, caller.sandbox, spec)
    return agent.to_dict() | {"warnings": warnings}


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


async def add_source(caller: Caller, body: wire.SourceCreate) -> JSON:
    """Register an MCP server and health-check it (editor)."""
    from cairn.services.sources import McpSourceSpec, add_mcp_source

    spec = McpSourceSpec(**body.model_dump())
    if spec.transport == "stdio":
        from cairn.services.sources import require_stdio_allowed

        require_stdio_allowed(caller.app, caller.principal, spec.command or "")
    return (await add_mcp_source(caller.app, caller.sandbox, spec)).to_dict()


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


def create_key(caller: Caller, body: wire.ApiKeyCreate) -> JSON:
    """A new key for the caller's sandbox (owner)."""
    from cairn.services.access import create_key as create

    key, token = create(caller.app, caller.sandbox, body.name, body.role)
    return {"key": key.to_dict(), "token": token}


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


def get_telemetry(caller: Caller) -> JSON:
    """This process's OpenTelemetry export (``cairn.telemetry.export_status``): in the
    server, what the server sent and dropped; in-process, the calling process's own
    exporter. Any valid key may read it: nothing in it belongs to a sandbox."""
    from cairn.telemetry import export_status

    return export_status()


# --- diagnosis and usage ----------------------------------------------------------------


async def doctor(caller: Caller, agent: str | None = None, quiet_days: float = 7) -> JSON:
    """The sandbox scan (or one agent's)."""
    from cairn.errors import UsageError
    from cairn.services.diagnosis import doctor as scan

    try:
        days = float(quiet_days)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"quiet_days {quiet_days!r} is not a number of days") from None
    return (await scan(caller.app, caller.sandbox, agent, days)).to_dict()


def get_usage(
    caller: Caller,
    *,
    since: str = "24h",
    by: str = "agent",
    agent: str | None = None,
    trigger_id: str | None = None,
) -> JSON:
    """Tokens, runs and estimated cost over the window ``since`` (``24h``, ``7d`` …)."""
    from cairn.durations import parse_duration
    from cairn.services.usage import usage

    report = usage(
        caller.app,
        caller.sandbox,
        since_s=parse_duration(since),
        by=by,
        agent=agent,
        trigger_id=trigger_id,
    )
    return report.to_dict()


def delete_threshold(caller: Caller, slug: str) -> JSON:
    """Stop watching the agent (editor)."""
    from cairn.services.usage import clear_threshold

    return {"agent_slug": slug, "cleared": clear_threshold(caller.app, caller.sandbox, slug)}


def list_enforcements(caller: Caller, *, agent: str | None = None, limit: int = 50) -> JSON:
    """Enforcements that paused triggers, newest first."""
    from cairn.errors import UsageError
    from cairn.services.usage import list_enforcements as list_all

    limit = int(limit)
    if not 1 <= limit <= 500:
        raise UsageError(f"limit {limit} is out of range: use 1 to 500")
    found = list_all(caller.app, caller.sandbox, agent, limit=limit)
    return [enforcement.to_dict() for enforcement in found]
