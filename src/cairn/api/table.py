"""Every API operation declared once: method, path, role, wire models and handler.

This table is what each transport is built from. ``cairn.api.routes`` turns it into the
FastAPI routes (and so the OpenAPI document); ``call``/``acall`` run an operation
in-process, as the SDK's local transport (``cairn.client.local``) and any other transport
in this process do; the SDK's HTTP transport formats its URLs from it; the CLI names
operations, never paths. A new operation is a line here and a handler in ``operations``
(``served`` when a service answers the call as it is).

Models are named, not imported (``"wire.Agent"``, ``"list[wire.Agent]"``): the table is
imported on the CLI's cold path, which must not load pydantic. ``resolve`` turns a name
into the type when a transport needs it.
"""

from __future__ import annotations

import importlib
import inspect
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from cairn.api import concierge_ops
from cairn.api import operations as ops
from cairn.api.operations import Caller
from cairn.domain.keys import Role, require
from cairn.errors import NotFound, UsageError

if TYPE_CHECKING:
    from pydantic import ValidationError

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
PREFIX = "/api/v1"
SANDBOX = "/sandboxes/{sandbox}"

MODEL_MODULES = {
    "wire": "cairn.wire",
    "wire_concierge": "cairn.wire.concierge",
    "wire_connections": "cairn.wire.connections",
    "wire_diagnosis": "cairn.wire.diagnosis",
    "wire_status": "cairn.wire.status",
    "wire_usage": "cairn.wire.usage",
}
"""The modules a model name may start with (``wire_usage.Threshold``)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One API operation. ``path`` is under ``/api/v1``; its ``{sandbox}`` is the caller's
    sandbox, every other field of it an argument of ``handler``, as are the body (``body``)
    and the query parameters. ``role`` is checked before the handler runs (``action`` says
    what is refused); a stream has no handler here (``cairn.api.streams`` serves it)."""

    name: str
    method: Method
    path: str
    handler: Callable[..., Any] | None
    response: str
    doc: str
    tag: str
    role: Role = "viewer"
    action: str = ""
    body: str | None = None
    query: str | None = None
    status: int = 200
    problems: tuple[int, ...] = ()
    traceparent: bool = False

    @property
    def path_params(self) -> tuple[str, ...]:
        """The fields of the path template other than ``sandbox``."""
        fields = (field for _, field, _, _ in string.Formatter().parse(self.path) if field)
        return tuple(field for field in fields if field != "sandbox")

    @property
    def sandboxed(self) -> bool:
        """Whether the path names a sandbox (the caller must hold a key of it)."""
        return self.path.startswith(SANDBOX)

    @property
    def stream(self) -> bool:
        """An SSE stream (served by ``cairn.api.streams``)."""
        return self.handler is None

    def url(self, sandbox: str, params: Mapping[str, Any]) -> str:
        """The absolute path of a call, each path field quoted."""
        values = {name: quote(str(params[name]), safe="") for name in self.path_params}
        return PREFIX + self.path.format(sandbox=quote(sandbox, safe=""), **values)


_op = Operation  # the table's rows are long enough without the full name
S = SANDBOX
OPERATIONS_LIST: tuple[Operation, ...] = (
    # --- agents
    _op("list_agents", "GET", f"{S}/agents", ops.list_agents, "list[wire.Agent]",
        "Every agent of the sandbox, archived ones included.", tag="agents"),
    _op("create_agent", "POST", f"{S}/agents", ops.create_agent, "wire.Agent",
        "Create an agent. Allowlist entries that match no tool today are kept, with warnings.",
        tag="agents", role="editor", action="create agents", body="wire.AgentCreate",
        status=201, problems=(400, 403, 409)),
    _op("get_agent", "GET", f"{S}/agents/{{slug}}", ops.get_agent, "wire.Agent",
        "One agent.", tag="agents"),
    _op("update_agent", "PATCH", f"{S}/agents/{{slug}}", ops.update_agent, "wire.Agent",
        "Change only the fields given; a new system prompt bumps the version.",
        tag="agents", role="editor", action="change agents", body="wire.AgentUpdate",
        problems=(400, 403)),
    _op("archive_agent", "POST", f"{S}/agents/{{slug}}/archive", ops.archive_agent,
        "wire.Agent", "Archive: triggers never fire it (reversible).",
        tag="agents", role="editor", action="archive agents", problems=(403,)),
    _op("unarchive_agent", "POST", f"{S}/agents/{{slug}}/unarchive", ops.unarchive_agent,
        "wire.Agent", "Restore an archived agent.",
        tag="agents", role="editor", action="archive agents", problems=(403,)),
    _op("agent_tools", "GET", f"{S}/agents/{{slug}}/tools", ops.agent_tools, "wire.Catalog",
        "The tools the agent would see right now, and the trace (nothing runs).", tag="agents"),
    _op("test_agent", "POST", f"{S}/agents/{{slug}}/test", ops.test_agent, "wire.Run",
        "Test-fire synchronously with a fake event; answers with the finished run row. A W3C "
        "``traceparent`` header puts the run's exported trace under the caller's span.",
        tag="agents", body="wire.FireRequest", problems=(400, 429), traceparent=True),
    _op("fire_agent", "POST", f"{S}/agents/{{slug}}/fire", ops.fire_agent, "wire.FireAccepted",
        "Fire asynchronously: answers with the run id at once; follow the run's stream. A W3C "
        "``traceparent`` header puts the run's exported trace under the caller's span.",
        tag="agents", role="editor", action="fire agents", body="wire.FireRequest",
        status=202, problems=(403, 429), traceparent=True),
    _op("list_agent_runs", "GET", f"{S}/agents/{{slug}}/runs", ops.list_agent_runs,
        "wire.RunPage", "The agent's runs, newest first; ``next_before`` continues the listing.",
        tag="agents", query="wire.AgentRunFilters", problems=(400,)),
    _op("get_agent_run_trace", "GET", f"{S}/agents/{{slug}}/runs/{{run_id}}/trace",
        ops.get_agent_run_trace, "wire.ToolResolutionTrace | None",
        "The tool-resolution trace of one of the agent's runs.", tag="agents"),
    _op("why_not_fired", "GET", f"{S}/agents/{{slug}}/why-not-fired",
        ops.why_not_fired, "wire_diagnosis.Explanation",
        "Why the agent did (not) fire on the last event of any source bound to it.",
        tag="diagnosis"),
    _op("stream_agent_runs", "GET", f"{S}/agents/{{slug}}/runs/stream", None, "wire.RunSummary",
        "The agent's runs as they are queued, start and finish (SSE).", tag="streams"),
    # --- runs
    _op("list_runs", "GET", f"{S}/runs", ops.list_runs, "wire.RunPage",
        "Runs across the sandbox's agents, newest first.",
        tag="runs", query="wire.RunFilters", problems=(400,)),
    _op("oneshot", "POST", f"{S}/runs/oneshot", ops.oneshot, "wire.Run | wire.FireAccepted",
        "One turn on a prompt, without a trigger (kind ``oneshot``): the finished run, or the "
        "run id at once with ``wait: false``.",
        tag="runs", role="editor", action="fire agents", body="wire.OneShotRequest",
        problems=(400, 403, 429), traceparent=True),
    _op("get_run", "GET", f"{S}/runs/{{run_id}}", ops.get_run, "wire.Run",
        "One run row.", tag="runs"),
    _op("get_trace", "GET", f"{S}/runs/{{run_id}}/trace", ops.get_trace,
        "wire.ToolResolutionTrace | None",
        "The run's tool-resolution trace (null if it ended before tools resolved).", tag="runs"),
    _op("get_events", "GET", f"{S}/runs/{{run_id}}/events", ops.get_events,
        "list[wire.RunEvent]", "The run's stored events after sequence ``after``.",
        tag="runs", query="wire.EventsAfter"),
    _op("cancel_run", "POST", f"{S}/runs/{{run_id}}/cancel", ops.cancel_run, "wire.Run",
        "Cancel a live run; it ends ``cancelled`` within a second, keeping its events.",
        tag="runs", role="editor", action="cancel runs", problems=(403, 409)),
    _op("replay_run", "POST", f"{S}/runs/{{run_id}}/replay", ops.replay_run, "wire.Run",
        "Fire the agent again on this run's event (or an edited one) as a test run.",
        tag="runs", body="wire.ReplayRequest", problems=(400, 429)),
    _op("explain_run", "GET", f"{S}/runs/{{run_id}}/explain", ops.explain_run,
        "wire_diagnosis.Explanation",
        "Why the run did what it did: the cause and the fix, citing the run, event and trace "
        "fields each finding rests on.", tag="diagnosis"),
    _op("stream_run", "GET", f"{S}/runs/{{run_id}}/stream", None, "wire.RunEvent",
        "Every event of the run in order (SSE ``id`` = seq), then ``end`` when it is final.",
        tag="streams"),
    # --- sources
    _op("list_sources", "GET", f"{S}/sources", ops.list_sources, "list[wire.Source]",
        "Every source, builtin first. Secrets are never included.", tag="sources"),
    _op("add_source", "POST", f"{S}/sources", ops.add_source, "wire.Health",
        "Register an MCP server and health-check it; a failed check saves it with status "
        "``error`` and the reason.", tag="sources", role="editor", action="add sources",
        body="wire.SourceCreate", status=201, problems=(400, 403, 409)),
    _op("get_source", "GET", f"{S}/sources/{{ref}}", ops.get_source, "wire.Source",
        "One source, by id or label.", tag="sources"),
    _op("test_source", "POST", f"{S}/sources/{{ref}}/test", ops.test_source, "wire.Health",
        "Health-check the source now (``tools/list``) and record the result.",
        tag="sources", problems=(400,)),
    _op("revoke_source", "POST", f"{S}/sources/{{ref}}/revoke", ops.revoke_source,
        "wire.Source", "Forget the binding and its secret; the server itself keeps running.",
        tag="sources", role="owner", action="revoke sources", problems=(403,)),
    _op("add_webhook", "POST", f"{S}/sources/webhooks", ops.add_webhook, "wire.WebhookCreated",
        "A webhook source; the sender POSTs signed deliveries to ``path`` (the secret is "
        "shown once).", tag="triggers and events", role="editor", action="add sources",
        body="wire.WebhookCreate", status=201, problems=(400, 403, 409)),
    _op("rotate_webhook_secret", "POST", f"{S}/sources/{{ref}}/rotate-secret",
        ops.rotate_webhook_secret, "wire.SecretRotated",
        "A new signing secret for a webhook source; the previous one keeps verifying for "
        "``overlap`` so the sender can switch without refused deliveries.",
        tag="triggers and events", role="editor", action="rotate source secrets",
        body="wire.SecretRotate", problems=(400, 403, 404)),
    _op("add_schedule", "POST", f"{S}/sources/schedules", ops.add_schedule, "wire.Source",
        "A schedule source emitting ``schedule.tick`` events while the server runs.",
        tag="triggers and events", role="editor", action="add sources",
        body="wire.ScheduleCreate", status=201, problems=(400, 403, 409)),
    _op("add_integration_source", "POST", f"{S}/sources/integrations",
        ops.add_integration_source, "wire.Source",
        "Register an OAuth'd app as a tool source; its tools are named "
        "``pd_<app_slug>_<tool>``. Runs skip it, with the reason, while it has no usable "
        "connection.", tag="connections", role="editor", action="add sources",
        body="wire_connections.IntegrationSourceCreate", status=201, problems=(400, 403, 409)),
    # --- sandboxes and keys
    _op("whoami", "GET", "/whoami", ops.whoami, "wire.Identity",
        "The key's sandbox and role (what an MCP bridge checks before offering a tool).",
        tag="sandboxes and keys"),
    _op("list_sandboxes", "GET", "/sandboxes", ops.list_sandboxes, "list[wire.Sandbox]",
        "The key's sandbox (an owner of ``default`` sees every sandbox).",
        tag="sandboxes and keys"),
    _op("create_sandbox", "POST", "/sandboxes", ops.create_sandbox, "wire.Sandbox",
        "Create a sandbox (owners of ``default`` only).", tag="sandboxes and keys",
        body="wire.SandboxCreate", status=201, problems=(400, 403, 409)),
    _op("list_keys", "GET", f"{S}/keys", ops.list_keys, "list[wire.ApiKey]",
        "The sandbox's keys, without secrets (owner).", tag="sandboxes and keys",
        role="owner", action="list API keys", problems=(403,)),
    _op("create_key", "POST", f"{S}/keys", ops.create_key, "wire.ApiKeyCreated",
        "A new key; its token is in this response only (owner).", tag="sandboxes and keys",
        role="owner", action="create API keys", body="wire.ApiKeyCreate", status=201,
        problems=(400, 403)),
    _op("revoke_key", "POST", f"{S}/keys/{{key_id}}/revoke", ops.revoke_key, "wire.ApiKey",
        "Revoke a key; calls with it answer 401 from now on (owner).",
        tag="sandboxes and keys", role="owner", action="revoke API keys", problems=(403,)),
    # --- triggers and events
    _op("create_trigger", "POST", f"{S}/agents/{{slug}}/triggers", ops.create_trigger,
        "wire.Trigger", "Bind the agent to a source's events.", tag="triggers and events",
        role="editor", action="create triggers", body="wire.TriggerCreate", status=201,
        problems=(400, 403)),
    _op("list_agent_triggers", "GET", f"{S}/agents/{{slug}}/triggers", ops.list_agent_triggers,
        "list[wire.Trigger]", "The agent's triggers with fire counts.",
        tag="triggers and events"),
    _op("list_triggers", "GET", f"{S}/triggers", ops.list_triggers, "list[wire.Trigger]",
        "Every trigger of the sandbox.", tag="triggers and events"),
    _op("get_trigger", "GET", f"{S}/triggers/{{trigger_id}}", ops.get_trigger, "wire.Trigger",
        "One trigger.", tag="triggers and events"),
    _op("update_trigger", "PATCH", f"{S}/triggers/{{trigger_id}}", ops.update_trigger,
        "wire.Trigger", "Change the filter, the cap or the status (pause/resume).",
        tag="triggers and events", role="editor", action="change triggers",
        body="wire.TriggerUpdate", problems=(400, 403)),
    _op("destroy_trigger", "DELETE", f"{S}/triggers/{{trigger_id}}", ops.destroy_trigger,
        "wire.Trigger", "Destroy a trigger for good (owner).", tag="triggers and events",
        role="owner", action="destroy triggers", problems=(403,)),
    _op("list_events", "GET", f"{S}/events", ops.list_events, "wire.EventPage",
        "Events newest first (``source``: id or label), each with every trigger's decision.",
        tag="triggers and events", query="wire.EventFilters", problems=(400,)),
    _op("get_event", "GET", f"{S}/events/{{event_id}}", ops.get_event, "wire.Event",
        "One event and what every trigger decided about it.", tag="triggers and events"),
    _op("explain_event", "GET", f"{S}/events/{{event_id}}/explain",
        ops.explain_event, "wire_diagnosis.Explanation",
        "Why the event fired what it fired, or nothing: each trigger's decision (filtered out "
        "by which filter, rate-limited, paused, archived), no trigger, or a refused delivery.",
        tag="diagnosis"),
    # --- credentials and connections
    _op("list_credentials", "GET", f"{S}/credentials", ops.list_credentials,
        "list[wire.Credential]",
        "Model backends with a stored API key (the keys are never returned).",
        tag="triggers and events"),
    _op("set_credential", "PUT", f"{S}/credentials/{{backend}}", ops.set_credential,
        "wire.Credential",
        "Store a model backend's API key for this sandbox, encrypted at rest (owner).",
        tag="triggers and events", role="owner", action="store credentials",
        body="wire.CredentialSet", problems=(400, 403)),
    _op("delete_credential", "DELETE", f"{S}/credentials/{{backend}}", ops.delete_credential,
        "wire.CredentialDeleted",
        "Forget a stored key; the environment's key, if any, applies again (owner).",
        tag="triggers and events", role="owner", action="delete credentials", problems=(403,)),
    _op("list_connections", "GET", f"{S}/connections", ops.list_connections,
        "list[wire_connections.Connection]",
        "Every OAuth connection of the sandbox, revoked ones too. Tokens are never included.",
        tag="connections"),
    _op("add_connection", "POST", f"{S}/connections", ops.add_connection,
        "wire_connections.Connection",
        "Store an app's OAuth token, encrypted at rest; it replaces the app's previous "
        "connection. The token is write-only.", tag="connections", role="editor",
        action="add connections", body="wire_connections.ConnectionCreate", status=201,
        problems=(400, 403)),
    _op("revoke_connection", "POST", f"{S}/connections/{{ref}}/revoke",
        ops.revoke_connection, "wire_connections.Connection",
        "Revoke a connection (by id, or the app's active one by app slug) and forget its "
        "token; the app's integration sources are skipped by runs until it is connected again.",
        tag="connections", role="owner", action="revoke connections", problems=(403,)),
    # --- diagnosis, usage, the Concierge, status
    _op("doctor", "GET", f"{S}/doctor", ops.doctor, "wire_diagnosis.DoctorReport",
        "Scan without running anything: stale allowlists against today's catalog, sources "
        "that would be skipped now, paused or quiet triggers, agents whose recent runs mostly "
        "fail or use no tools, runaway usage. ``ok`` is false when something needs fixing.",
        tag="diagnosis", query="wire_diagnosis.DoctorQuery", problems=(400,)),
    _op("get_usage", "GET", f"{S}/usage", ops.get_usage, "wire_usage.UsageReport",
        "Runs, tokens in and out and estimated cost (integer micro-units) of the runs created "
        "in the window, grouped, each group with its tokens per hour; and the totals.",
        tag="usage", query="wire_usage.UsageQuery"),
    _op("list_thresholds", "GET", f"{S}/thresholds", ops.list_thresholds,
        "list[wire_usage.Threshold]", "Every agent's cost-watch threshold in the sandbox.",
        tag="usage"),
    _op("get_threshold", "GET", f"{S}/agents/{{slug}}/threshold", ops.get_threshold,
        "wire_usage.Threshold | None",
        "The agent's threshold, or null when it is not watched.", tag="usage"),
    _op("put_threshold", "PUT", f"{S}/agents/{{slug}}/threshold", ops.put_threshold,
        "wire_usage.Threshold",
        "Set (replace) the agent's limits per hour: tokens in + out and/or estimated cost. "
        "Over either in the last hour, the agent is a runaway (``doctor`` reports it); with "
        "``pause_triggers``, enforcing pauses its active triggers and records why.",
        tag="usage", role="editor", action="set usage thresholds",
        body="wire_usage.ThresholdSet", problems=(403,)),
    _op("delete_threshold", "DELETE", f"{S}/agents/{{slug}}/threshold",
        ops.delete_threshold, "wire_usage.ThresholdCleared",
        "Stop watching the agent (its past enforcements stay on record).", tag="usage",
        role="editor", action="clear usage thresholds", problems=(403,)),
    _op("list_runaways", "GET", f"{S}/runaways", ops.list_runaways,
        "list[wire_usage.RunawayFlag]",
        "Agents over a threshold in the last hour, most over first. Changes nothing.",
        tag="usage"),
    _op("enforce", "POST", f"{S}/runaways/enforce", ops.enforce,
        "list[wire_usage.RunawayFlag]",
        "Pause the active triggers of each runaway agent whose threshold has "
        "``pause_triggers``, and record why (``GET /enforcements``). Returns those agents' "
        "flags with the triggers paused; resume a trigger as usual once the cause is fixed.",
        tag="usage", role="editor", action="enforce usage thresholds (it pauses triggers)",
        problems=(403,)),
    _op("list_enforcements", "GET", f"{S}/enforcements", ops.list_enforcements,
        "list[wire_usage.Enforcement]",
        "Threshold enforcements that paused triggers, newest first, each with its reason.",
        tag="usage", query="wire_usage.EnforcementQuery"),
    _op("ask", "POST", f"{S}/ask", concierge_ops.ask, "wire_concierge.Answer",
        concierge_ops.ASK_DOC, tag="concierge", body="wire_concierge.AskRequest",
        problems=(400, 403)),
    _op("get_status", "GET", f"{S}/status", ops.get_status, "wire_status.ExecutionStatus",
        "The sandbox's backlog (queued, running, oldest queued run and its age) and every "
        "worker on the ledger with its last heartbeat and whether it is alive.", tag="status"),
    _op("get_telemetry", "GET", "/telemetry", ops.get_telemetry, "wire_status.TelemetryStatus",
        "OpenTelemetry export of this server: runs and spans sent, and those that could not "
        "be (collector down, queue full), counted since it started.", tag="telemetry"),
)  # fmt: skip

OPERATIONS: dict[str, Operation] = {op.name: op for op in OPERATIONS_LIST}
"""The operations by name: what a transport (or the CLI) asks for."""


def operation(name: str) -> Operation:
    """The operation called ``name``, or ``NotFound`` naming it."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise NotFound(f"no operation {name!r}") from None


# --- resolving model names -------------------------------------------------------------


@cache
def resolve(expression: str) -> Any:
    """The type a model name stands for: ``wire.Agent``, ``list[wire.Agent]``,
    ``wire.Run | wire.FireAccepted``, ``wire.ToolResolutionTrace | None``."""
    import functools
    import operator

    terms = [_term(part.strip()) for part in expression.split("|")]
    return functools.reduce(operator.or_, terms)


def _term(text: str) -> Any:
    if text == "None":
        return type(None)
    if text.startswith("list[") and text.endswith("]"):
        return list[_term(text[5:-1])]  # type: ignore[misc]
    module, _, name = text.partition(".")
    return getattr(importlib.import_module(MODEL_MODULES[module]), name)


# --- calling in-process ----------------------------------------------------------------


def validate_body(op: Operation, body: Any) -> Any:
    """The request body as the operation's wire model, checked as the server checks it
    (the intake limits, then the model); ``InvalidJSON`` names what is wrong where."""
    from pydantic import ValidationError

    from cairn.domain.limits import check_value
    from cairn.errors import InvalidJSON

    assert op.body is not None
    check_value(body, "the request body")
    try:
        return resolve(op.body).model_validate(body if body is not None else {})
    except ValidationError as exc:
        raise InvalidJSON(first_error(exc)) from None


def first_error(exc: ValidationError) -> str:
    """A model's refusal in one line: where (a dotted path) and what, of its first error."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def invoke(op: Operation, caller: Caller, arguments: Mapping[str, Any]) -> Any:
    """Check the caller's role, then run the handler (its result, or an awaitable)."""
    assert op.handler is not None, f"{op.name} is a stream"
    if op.role != "viewer":
        require(caller.principal, op.role, op.action)
    return op.handler(caller, **arguments)


def split_params(
    op: Operation, params: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call's parameters as the fields of the path and the query parameters (those given:
    ``None`` is left out); an empty or missing path field is bad input, said as such."""
    given = {name: value for name, value in (params or {}).items() if value is not None}
    path = {}
    for name in op.path_params:
        value = given.pop(name, None)
        if value is None or str(value).strip() == "":
            raise UsageError(f"{op.name} needs {name}: an id or name is empty or missing")
        path[name] = value
    return path, given


def _arguments(op: Operation, params: Mapping[str, Any] | None, body: Any) -> dict[str, Any]:
    """The handler's arguments from a call's parameters (path and query) and body."""
    if op.handler is None:
        raise UsageError(f"{op.name} is a stream: follow it, do not call it")
    path, query = split_params(op, params)
    unknown = set(query) - _accepted(op)
    if unknown:
        raise UsageError(f"{op.name} takes no parameter {sorted(unknown)[0]!r}")
    arguments = path | query
    if op.body is not None:
        arguments["body"] = validate_body(op, body)
    return arguments


@cache
def _accepted(op: Operation) -> frozenset[str]:
    assert op.handler is not None
    parameters = inspect.signature(op.handler).parameters.values()
    fixed = (p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return frozenset(fixed) - {"caller", "body", "traceparent"}


def call(
    name: str, caller: Caller, params: Mapping[str, Any] | None = None, body: Any = None
) -> Any:
    """Run operation ``name`` as ``caller``, synchronously: ``params`` are its path and
    query parameters, ``body`` its JSON body (validated by its wire model). Returns the
    JSON-ready result the HTTP route would serve; raises ``cairn.errors``."""
    op = operation(name)
    result = invoke(op, caller, _arguments(op, params, body))
    if inspect.isawaitable(result):
        import anyio

        async def wait(awaitable: Awaitable[Any]) -> Any:
            return await awaitable

        return anyio.run(wait, result)
    return result


async def acall(
    name: str, caller: Caller, params: Mapping[str, Any] | None = None, body: Any = None
) -> Any:
    """``call`` from async code: a blocking handler runs in a worker thread."""
    import anyio

    op = operation(name)
    arguments = _arguments(op, params, body)
    if inspect.iscoroutinefunction(op.handler):
        return await invoke(op, caller, arguments)
    return await anyio.to_thread.run_sync(lambda: invoke(op, caller, arguments))
