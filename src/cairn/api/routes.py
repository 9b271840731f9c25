"""HTTP routes under ``/api/v1``: thin wrappers that call ``cairn.api.operations``.

Each route declares its response model and the problems it can answer, so the OpenAPI
document is complete; bodies are validated by the wire models before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status

from cairn import wire
from cairn.api import operations as ops
from cairn.api.app import CallerDep, KeyCallerDep, problem_responses
from cairn.telemetry.context import valid_traceparent

PREFIX = "/api/v1/sandboxes/{sandbox}"
# The caller's W3C trace context; a malformed one is ignored, never refused.
TraceparentDep = Annotated[str | None, Header(include_in_schema=True)]


_problems = problem_responses


router = APIRouter(prefix="/api/v1")
agents = APIRouter(prefix="/sandboxes/{sandbox}/agents", tags=["agents"])
runs = APIRouter(prefix="/sandboxes/{sandbox}/runs", tags=["runs"])
sources = APIRouter(prefix="/sandboxes/{sandbox}/sources", tags=["sources"])
access = APIRouter(tags=["sandboxes and keys"])


# --- agents -----------------------------------------------------------------------------


@agents.get("", response_model=list[wire.Agent], responses=_problems())
def list_agents(caller: CallerDep) -> Any:
    """Every agent of the sandbox, archived ones included."""
    return ops.list_agents(caller)


@agents.post(
    "",
    response_model=wire.Agent,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
async def create_agent(caller: CallerDep, body: wire.AgentCreate) -> Any:
    """Create an agent. Allowlist entries that match no tool today are kept, with warnings."""
    return await ops.create_agent(caller, body)


@agents.get("/{slug}", response_model=wire.Agent, responses=_problems())
def get_agent(caller: CallerDep, slug: str) -> Any:
    """One agent."""
    return ops.get_agent(caller, slug)


@agents.patch("/{slug}", response_model=wire.Agent, responses=_problems(400, 403))
async def update_agent(caller: CallerDep, slug: str, body: wire.AgentUpdate) -> Any:
    """Change only the fields given; a new system prompt bumps the version."""
    return await ops.update_agent(caller, slug, body)


@agents.post("/{slug}/archive", response_model=wire.Agent, responses=_problems(403))
def archive_agent(caller: CallerDep, slug: str) -> Any:
    """Archive: triggers never fire it (reversible)."""
    return ops.set_archived(caller, slug, True)


@agents.post("/{slug}/unarchive", response_model=wire.Agent, responses=_problems(403))
def unarchive_agent(caller: CallerDep, slug: str) -> Any:
    """Restore an archived agent."""
    return ops.set_archived(caller, slug, False)


@agents.get("/{slug}/tools", response_model=wire.Catalog, responses=_problems())
async def agent_tools(caller: CallerDep, slug: str) -> Any:
    """The tools the agent would see right now, and the trace (nothing runs)."""
    return await ops.agent_tools(caller, slug)


@agents.post("/{slug}/test", response_model=wire.Run, responses=_problems(400, 429))
async def test_agent(
    caller: CallerDep, slug: str, body: wire.FireRequest, traceparent: TraceparentDep = None
) -> Any:
    """Test-fire synchronously with a fake event; answers with the finished run row. A W3C
    ``traceparent`` header puts the run's exported trace under the caller's span."""
    return await ops.test_agent(caller, slug, body.event_payload, valid_traceparent(traceparent))


@agents.post(
    "/{slug}/fire",
    response_model=wire.FireAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_problems(403, 429),
)
async def fire_agent(
    caller: CallerDep, slug: str, body: wire.FireRequest, traceparent: TraceparentDep = None
) -> Any:
    """Fire asynchronously: answers with the run id at once; follow the run's stream. A W3C
    ``traceparent`` header puts the run's exported trace under the caller's span."""
    return await ops.fire_agent(caller, slug, body.event_payload, valid_traceparent(traceparent))


@agents.get("/{slug}/runs", response_model=wire.RunPage, responses=_problems(400))
def list_agent_runs(
    caller: CallerDep,
    slug: str,
    status: Annotated[wire.RunStatus | None, Query()] = None,
    trigger_id: str | None = None,
    kind: Annotated[wire.RunKind | None, Query()] = None,
    before: Annotated[str | None, Query(description="run_id cursor: runs older than it")] = None,
    since: Annotated[str | None, Query(description="window, e.g. 24h, 7d")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Any:
    """The agent's runs, newest first; ``next_before`` continues the listing."""
    return ops.list_runs(
        caller,
        agent=slug,
        status=status,
        trigger_id=trigger_id,
        kind=kind,
        before=before,
        since=since,
        limit=limit,
    )


@agents.get(
    "/{slug}/runs/{run_id}/trace",
    response_model=wire.ToolResolutionTrace | None,
    responses=_problems(),
)
def get_agent_run_trace(caller: CallerDep, slug: str, run_id: str) -> Any:
    """The tool-resolution trace of one of the agent's runs."""
    return ops.get_trace(caller, run_id, agent=slug)


# --- runs -------------------------------------------------------------------------------


@runs.get("", response_model=wire.RunPage, responses=_problems(400))
def list_runs(
    caller: CallerDep,
    agent: str | None = None,
    status: Annotated[wire.RunStatus | None, Query()] = None,
    trigger_id: str | None = None,
    kind: Annotated[wire.RunKind | None, Query()] = None,
    before: str | None = None,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Any:
    """Runs across the sandbox's agents, newest first."""
    return ops.list_runs(
        caller,
        agent=agent,
        status=status,
        trigger_id=trigger_id,
        kind=kind,
        before=before,
        since=since,
        limit=limit,
    )


@runs.post(
    "/oneshot", response_model=wire.Run | wire.FireAccepted, responses=_problems(400, 403, 429)
)
async def oneshot(
    caller: CallerDep, body: wire.OneShotRequest, traceparent: TraceparentDep = None
) -> Any:
    """One turn on a prompt, without a trigger (kind ``oneshot``): the finished run, or the
    run id at once with ``wait: false``."""
    return await ops.oneshot(caller, body, valid_traceparent(traceparent))


@runs.get("/{run_id}", response_model=wire.Run, responses=_problems())
def get_run(caller: CallerDep, run_id: str) -> Any:
    """One run row."""
    return ops.get_run(caller, run_id)


@runs.get("/{run_id}/trace", response_model=wire.ToolResolutionTrace | None, responses=_problems())
def get_trace(caller: CallerDep, run_id: str) -> Any:
    """The run's tool-resolution trace (null if it ended before tools resolved)."""
    return ops.get_trace(caller, run_id)


@runs.get("/{run_id}/events", response_model=list[wire.RunEvent], responses=_problems())
def get_events(
    caller: CallerDep, run_id: str, after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0
) -> Any:
    """The run's stored events after sequence ``after``."""
    return ops.get_events(caller, run_id, after)


@runs.post("/{run_id}/cancel", response_model=wire.Run, responses=_problems(403, 409))
async def cancel_run(caller: CallerDep, run_id: str) -> Any:
    """Cancel a live run; it ends ``cancelled`` within a second, keeping its events.
    (Async so it runs on the event loop that runs the run.)"""
    return ops.cancel_run(caller, run_id)


@runs.post("/{run_id}/replay", response_model=wire.Run, responses=_problems(400, 429))
async def replay_run(caller: CallerDep, run_id: str, body: wire.ReplayRequest) -> Any:
    """Fire the agent again on this run's event (or an edited one) as a test run."""
    return await ops.replay_run(caller, run_id, body.event_payload)


# --- sources ----------------------------------------------------------------------------


@sources.get("", response_model=list[wire.Source], responses=_problems())
def list_sources(caller: CallerDep) -> Any:
    """Every source, builtin first. Secrets are never included."""
    return ops.list_sources(caller)


@sources.post(
    "",
    response_model=wire.Health,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
async def add_source(caller: CallerDep, body: wire.SourceCreate) -> Any:
    """Register an MCP server and health-check it; a failed check saves it with status
    ``error`` and the reason."""
    return await ops.add_source(caller, body)


@sources.get("/{ref}", response_model=wire.Source, responses=_problems())
def get_source(caller: CallerDep, ref: str) -> Any:
    """One source, by id or label."""
    return ops.get_source(caller, ref)


@sources.post("/{ref}/test", response_model=wire.Health, responses=_problems(400))
async def test_source(caller: CallerDep, ref: str) -> Any:
    """Health-check the source now (``tools/list``) and record the result."""
    return await ops.test_source(caller, ref)


@sources.post("/{ref}/revoke", response_model=wire.Source, responses=_problems(403))
def revoke_source(caller: CallerDep, ref: str) -> Any:
    """Forget the binding and its secret; the server itself keeps running."""
    return ops.revoke_source(caller, ref)


# --- sandboxes and keys -----------------------------------------------------------------


@access.get("/sandboxes", response_model=list[wire.Sandbox], responses=_problems())
def list_sandboxes(caller: KeyCallerDep) -> Any:
    """The key's sandbox (an owner of ``default`` sees every sandbox)."""
    return ops.list_sandboxes(caller)


@access.post(
    "/sandboxes",
    response_model=wire.Sandbox,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
def create_sandbox(caller: KeyCallerDep, body: wire.SandboxCreate) -> Any:
    """Create a sandbox (owners of ``default`` only)."""
    return ops.create_sandbox(caller, body.sandbox_id, body.name)


@access.get("/sandboxes/{sandbox}/keys", response_model=list[wire.ApiKey], responses=_problems(403))
def list_keys(caller: CallerDep) -> Any:
    """The sandbox's keys, without secrets (owner)."""
    return ops.list_keys(caller)


@access.post(
    "/sandboxes/{sandbox}/keys",
    response_model=wire.ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403),
)
def create_key(caller: CallerDep, body: wire.ApiKeyCreate) -> Any:
    """A new key; its token is in this response only (owner)."""
    return ops.create_key(caller, body.name, body.role)


@access.post(
    "/sandboxes/{sandbox}/keys/{key_id}/revoke",
    response_model=wire.ApiKey,
    responses=_problems(403),
)
def revoke_key(caller: CallerDep, key_id: str) -> Any:
    """Revoke a key; calls with it answer 401 from now on (owner)."""
    return ops.revoke_key(caller, key_id)


router.include_router(agents)
router.include_router(runs)
router.include_router(sources)
router.include_router(access)


# --- triggers and events ------------------------------------------------------------------

triggers = APIRouter(prefix="/sandboxes/{sandbox}", tags=["triggers and events"])


@triggers.post(
    "/agents/{slug}/triggers",
    response_model=wire.Trigger,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403),
)
def create_trigger(caller: CallerDep, slug: str, body: wire.TriggerCreate) -> Any:
    """Bind the agent to a source's events."""
    return ops.create_trigger(caller, slug, body)


@triggers.get("/agents/{slug}/triggers", response_model=list[wire.Trigger], responses=_problems())
def list_agent_triggers(caller: CallerDep, slug: str) -> Any:
    """The agent's triggers with fire counts."""
    return ops.list_triggers(caller, slug)


@triggers.get("/triggers", response_model=list[wire.Trigger], responses=_problems())
def list_triggers(caller: CallerDep) -> Any:
    """Every trigger of the sandbox."""
    return ops.list_triggers(caller)


@triggers.get("/triggers/{trigger_id}", response_model=wire.Trigger, responses=_problems())
def get_trigger(caller: CallerDep, trigger_id: str) -> Any:
    """One trigger."""
    return ops.get_trigger(caller, trigger_id)


@triggers.patch(
    "/triggers/{trigger_id}", response_model=wire.Trigger, responses=_problems(400, 403)
)
def update_trigger(caller: CallerDep, trigger_id: str, body: wire.TriggerUpdate) -> Any:
    """Change the filter, the cap or the status (pause/resume)."""
    return ops.update_trigger(caller, trigger_id, body)


@triggers.delete("/triggers/{trigger_id}", response_model=wire.Trigger, responses=_problems(403))
def destroy_trigger(caller: CallerDep, trigger_id: str) -> Any:
    """Destroy a trigger for good (owner)."""
    return ops.destroy_trigger(caller, trigger_id)


@triggers.get("/events", response_model=wire.EventPage, responses=_problems(400))
def list_events(
    caller: CallerDep,
    source: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> Any:
    """Events newest first (``source``: id or label), each with every trigger's decision."""
    return ops.list_events(caller, source, before, limit)


@triggers.get("/events/{event_id}", response_model=wire.Event, responses=_problems())
def get_event(caller: CallerDep, event_id: str) -> Any:
    """One event and what every trigger decided about it."""
    return ops.get_event(caller, event_id)


@triggers.post(
    "/sources/webhooks",
    response_model=wire.WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
def add_webhook(caller: CallerDep, body: wire.WebhookCreate) -> Any:
    """A webhook source; the sender POSTs signed deliveries to ``path`` (the secret is
    shown once)."""
    return ops.add_webhook(caller, body)


@triggers.post(
    "/sources/{ref}/rotate-secret",
    response_model=wire.SecretRotated,
    responses=_problems(400, 403, 404),
)
def rotate_webhook_secret(caller: CallerDep, ref: str, body: wire.SecretRotate) -> Any:
    """A new signing secret for a webhook source; the previous one keeps verifying for
    ``overlap`` so the sender can switch without refused deliveries."""
    return ops.rotate_webhook_secret(caller, ref, body)


@triggers.post(
    "/sources/schedules",
    response_model=wire.Source,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
def add_schedule(caller: CallerDep, body: wire.ScheduleCreate) -> Any:
    """A schedule source emitting ``schedule.tick`` events while the server runs."""
    return ops.add_schedule(caller, body.label, body.cron, body.timezone)


@triggers.get("/credentials", response_model=list[wire.Credential], responses=_problems())
def list_credentials(caller: CallerDep) -> Any:
    """Model backends with a stored API key (the keys are never returned)."""
    return ops.list_credentials(caller)


@triggers.put(
    "/credentials/{backend}", response_model=wire.Credential, responses=_problems(400, 403)
)
def set_credential(caller: CallerDep, backend: str, body: wire.CredentialSet) -> Any:
    """Store a model backend's API key for this sandbox, encrypted at rest (owner)."""
    return ops.set_credential(caller, backend, body.api_key)


@triggers.delete(
    "/credentials/{backend}", response_model=wire.CredentialDeleted, responses=_problems(403)
)
def delete_credential(caller: CallerDep, backend: str) -> Any:
    """Forget a stored key; the environment's key, if any, applies again (owner)."""
    return ops.delete_credential(caller, backend)


router.include_router(triggers)
