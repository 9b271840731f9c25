"""The wire models: what the HTTP API serves and accepts, what the SDK returns, what
``--json`` prints. One set, so the three cannot drift apart.

Responses are built from the domain objects' ``to_dict`` forms; requests are validated
here (pydantic at the edge) and turned into domain objects by the services.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.domain.agents import AgentStatus
from cairn.domain.deliveries import SecretUsed
from cairn.domain.keys import Role as Role
from cairn.domain.limits import MAX_TEXT_CHARS
from cairn.domain.runs import RunEventKind as RunEventKind
from cairn.domain.runs import RunKind as RunKind
from cairn.domain.runs import RunStatus as RunStatus
from cairn.domain.sources import AuthMode, SourceStatus, Transport
from cairn.domain.triggers import Decision as DecisionKind
from cairn.domain.triggers import EventStatus, TriggerStatus

Slug = Annotated[
    str,
    Field(
        description="1-64 of a-z, 0-9 and '-', starting and ending with a letter or digit",
        json_schema_extra={"pattern": r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", "maxLength": 64},
    ),
]
"""An agent slug or sandbox id. The schema declares the rule; the server checks it itself
(``validate_slug``, a 400 that names the value), so pydantic is not asked to."""
Label = Annotated[
    str,
    Field(
        description="A source label: 1-100 printable characters, not only spaces; not a "
        "kind's name (builtin, webhook, schedule, integration, user_mcp, mcp) nor 'src_…'",
        json_schema_extra={
            "minLength": 1,
            "maxLength": 100,
            "pattern": r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
        },
    ),
]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
"""A prompt or other long text, within the documented limit."""
Name = Annotated[str, Field(max_length=200)]

MAX_INT32 = 2**31 - 1
"""The largest count the ledger's integer columns hold (a larger one is refused as input)."""


class Wire(BaseModel):
    """Base: unknown fields are refused on input, so typos fail loudly; types are strict
    (``true`` is not an integer, ``1`` is not a string), as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    error: str = Field(description="Cairn's error class, e.g. NotFound, InvalidSlug")


class ModelSettings(Wire):
    """How an agent talks to its model (see docs/scripted.md for ``script``)."""

    backend: str = "scripted"
    model: str = "scripted-1"
    temperature: float | None = None
    max_tokens: int = 1024
    max_turns: int = 8
    timeout_s: float = 120.0
    base_url: str | None = None
    script: Any = None


class AgentCreate(Wire):
    """A new agent. ``tool_sources`` null = the sandbox default, [] = no tools."""

    slug: Slug
    system_prompt: Text
    name: Name | None = None
    description: Text = ""
    tool_sources: list[str] | None = None
    tool_allowlist: list[str] = Field(default_factory=list)
    model_settings: dict[str, Any] = Field(default_factory=dict)


class AgentUpdate(Wire):
    """Only the fields present change; ``tool_sources: null`` resets to the sandbox default."""

    name: Name | None = None
    description: Text | None = None
    system_prompt: Text | None = None
    tool_sources: list[str] | None = None
    tool_allowlist: list[str] | None = None
    model_settings: dict[str, Any] | None = None


class Agent(BaseModel):
    """A stored agent. ``warnings`` (on create/update) name stale allowlist entries."""

    agent_id: str
    sandbox_id: str
    slug: str
    name: str
    description: str
    system_prompt: str
    tool_sources: list[str] | None
    tool_allowlist: list[str]
    model_settings: ModelSettings
    version: int
    status: AgentStatus
    created_at: str | None
    updated_at: str | None
    warnings: list[str] = Field(default_factory=list)


class SourceResolved(BaseModel):
    source_id: str
    kind: str
    label: str
    tool_count: int
    duration_ms: float
    hidden_by_source: list[str] = Field(default_factory=list)
    hidden_by_source_count: int | None = None


class SourceSkipped(BaseModel):
    source_id: str
    kind: str
    label: str
    reason: str
    message: str


class MissingEntry(BaseModel):
    entry: str
    suggestions: list[str]
    possibly_from_skipped: str | None = None


class ToolResolutionTrace(BaseModel):
    """Why the agent saw the tools it saw (docs/ledger.md)."""

    sources_resolved: list[SourceResolved]
    sources_skipped: list[SourceSkipped]
    tool_names_advertised: list[str]
    allowlist_filtered_out: list[str]
    allowlist_missing_entries: list[MissingEntry]
    duration_ms: float
    name_conflicts: list[str] = Field(default_factory=list)
    tool_names_advertised_count: int | None = None
    allowlist_filtered_out_count: int | None = None
    name_conflicts_count: int | None = None
    capped: bool = Field(
        default=False, description="Long lists were cut to a sample; the counts are complete"
    )


class Tool(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class Catalog(BaseModel):
    """The tools an agent would see right now, and the trace."""

    agent: str
    tools: list[Tool]
    trace: ToolResolutionTrace


class ToolCall(BaseModel):
    call_id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    duration_ms: float


class Run(BaseModel):
    """A run row (docs/ledger.md for status, outcome and error_type values)."""

    run_id: str
    sandbox_id: str
    agent_id: str
    agent_slug: str
    agent_version: int
    kind: RunKind
    trigger_id: str | None
    status: RunStatus
    outcome: str | None
    event_payload: Any
    output_text: str
    tool_calls: list[ToolCall]
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_micros: int | None
    duration_ms: float | None
    error_message: str | None
    error_type: str | None
    model: str | None
    tool_resolution_trace: ToolResolutionTrace | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    replay_of: str | None = None
    traceparent: str | None = None


class RunPage(BaseModel):
    """A page of runs, newest first; pass ``next_before`` as ``before`` for the next page."""

    runs: list[Run]
    next_before: str | None


class AgentRunFilters(BaseModel):
    """The query parameters of an agent's run listing."""

    status: RunStatus | None = None
    trigger_id: str | None = None
    kind: RunKind | None = None
    before: str | None = Field(None, description="run_id cursor: runs older than it")
    since: str | None = Field(None, description="window, e.g. 24h, 7d")
    limit: int = Field(20, ge=1, le=1000)


class RunFilters(AgentRunFilters):
    """The query parameters of the sandbox's run listing."""

    agent: str | None = Field(None, description="Only this agent (slug)")


class EventsAfter(BaseModel):
    """Where a run's stored events resume."""

    after: int = Field(0, ge=0, le=MAX_INT32, description="resume after this seq")


class RunEvent(BaseModel):
    """One event of a run's stream (``seq`` from 1)."""

    seq: int
    kind: RunEventKind
    data: dict[str, Any]
    created_at: str | None


class RunSummary(BaseModel):
    """A run starting or finishing, as the per-agent tail shows it."""

    run_id: str
    agent_slug: str
    kind: RunKind
    trigger_id: str | None
    status: RunStatus
    outcome: str | None
    tokens_in: int
    tokens_out: int
    tool_calls: int
    duration_ms: float | None
    error_message: str | None
    created_at: str | None


class FireRequest(Wire):
    """The (fake) event an agent is fired with, delivered exactly as a trigger would."""

    event_payload: Any = Field(default_factory=dict)


class ReplayRequest(Wire):
    """Replay a run's event, or an edited one (``event_payload``), as a test run."""

    event_payload: Any = None


class OneShotRequest(Wire):
    """A one-shot turn: ``prompt`` delivered as the event to ``agent``, or, without one, to
    the sandbox's ad-hoc ``oneshot`` agent configured by the other fields (it is archived,
    so no trigger ever fires it). ``wait: false`` answers at once with the run id."""

    prompt: Text
    agent: Slug | None = None
    model_settings: dict[str, Any] | None = None
    tool_sources: list[str] | None = None
    tool_allowlist: list[str] | None = None
    system_prompt: Text | None = None
    wait: bool = True


class FireAccepted(BaseModel):
    """An asynchronous fire was accepted; follow ``run_id``."""

    run_id: str
    status: RunStatus
    agent_slug: str


class SourceCreate(Wire):
    """A user's MCP server: stdio (``command``) or streamable HTTP (``url``)."""

    label: Label
    transport: Transport
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    url: str | None = None
    auth: AuthMode = "none"
    token: str | None = Field(default=None, description="Bearer token or header value; write-only")
    header_name: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="stdio env; write-only")
    namespace: str | None = None
    allowed_tools: list[str] | None = None
    calls_per_minute: int | None = None


class Source(BaseModel):
    """A tool source; secrets are never included, only their names in ``secret_fields``."""

    source_id: str
    sandbox_id: str
    kind: str
    label: str
    config: dict[str, Any]
    status: SourceStatus
    status_reason: str | None
    created_at: str | None
    updated_at: str | None
    checked_at: str | None


class Health(BaseModel):
    """The result of a source's health check (``tools/list``)."""

    source: Source
    ok: bool
    reason: str | None
    message: str
    tool_names: list[str]
    duration_ms: float


class Sandbox(BaseModel):
    sandbox_id: str
    name: str


class Identity(BaseModel):
    """Who the key calling is: its sandbox and role (``key_id`` null for the local operator)."""

    sandbox_id: str
    role: Role
    key_id: str | None


class SandboxCreate(Wire):
    sandbox_id: Slug
    name: Name | None = None


class ApiKey(BaseModel):
    key_id: str
    sandbox_id: str
    name: str
    role: Role
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class ApiKeyCreate(Wire):
    name: Name = ""
    role: Role = "viewer"


class ApiKeyCreated(BaseModel):
    """A new key. ``token`` is shown this once and stored only as a hash."""

    key: ApiKey
    token: str


class TriggerCreate(Wire):
    """Bind the agent to a source's events."""

    data_source_id: str = Field(description="Source id or label (webhook, schedule, integration)")
    event_type_filter: str = "*"
    filter_config: dict[str, Any] | None = None
    rate_limit_per_hour: int | None = Field(
        default=None, le=MAX_INT32, json_schema_extra={"minimum": 1}
    )


class TriggerUpdate(Wire):
    """Only the fields present change; null removes the filter or the cap."""

    event_type_filter: str | None = None
    filter_config: dict[str, Any] | None = None
    rate_limit_per_hour: int | None = Field(
        default=None, le=MAX_INT32, json_schema_extra={"minimum": 1}
    )
    status: TriggerStatus | None = None


class Trigger(BaseModel):
    """A trigger with its diagnostics (fire_count, last_fired_at)."""

    trigger_id: str
    sandbox_id: str
    agent_id: str
    agent_slug: str | None
    data_source_id: str
    event_type_filter: str
    filter_config: dict[str, Any] | None
    rate_limit_per_hour: int | None
    status: TriggerStatus
    fire_count: int
    last_fired_at: str | None
    created_at: str | None
    updated_at: str | None


class Decision(BaseModel):
    """One trigger's decision about one event."""

    event_id: str
    trigger_id: str
    decision: DecisionKind
    detail: dict[str, Any] | None
    run_id: str | None
    decided_at: str | None


class DeliveryFacts(BaseModel):
    """How a webhook delivery arrived: the provider that signed it, its delivery id, where
    the event type came from, the headers that matter; for a refusal, its code; for a
    handshake (``ping``, ``url_verification``), which one."""

    provider: str
    delivery_id: str | None
    type_from: str | None
    headers: dict[str, str]
    handshake: str | None
    refusal: str | None
    secret_used: SecretUsed | None


class Event(BaseModel):
    """An event a source received (or refused), with every trigger's decision."""

    event_id: str
    sandbox_id: str
    source_id: str
    sender_event_id: str | None
    event_type: str | None
    payload: Any
    status: EventStatus
    reject_reason: str | None
    received_at: str | None
    decisions: list[Decision] | None
    delivery: DeliveryFacts | None = None


class EventPage(BaseModel):
    """Events newest first; ``next_before`` continues."""

    events: list[Event]
    next_before: str | None


class EventFilters(BaseModel):
    """The query parameters of the event listing."""

    source: str | None = Field(None, description="Only this source (id or label)")
    before: str | None = Field(None, description="event_id cursor: events older than it")
    limit: int = Field(20, ge=1, le=500)


class WebhookCreate(Wire):
    """A webhook source for one sender. ``provider`` says how it signs (``cairn``, ``github``,
    ``stripe``, ``slack``, ``linear``, ``standard``, ``hmac``); ``signing_secret`` pastes the
    provider's own (Stripe/Standard ``whsec_…``, Slack's Signing Secret, Linear's), else
    Cairn generates one where the provider lets you type it; ``options`` configure ``hmac``."""

    label: Label
    provider: str = "cairn"
    signing_secret: str | None = None
    options: dict[str, Any] | None = None


class WebhookCreated(BaseModel):
    """A webhook source; ``signing_secret`` is shown this once (``null`` while a provider
    that issues its own is waiting for it: paste it with a rotation)."""

    source: Source
    path: str
    provider: str
    signing_secret: str | None


class SecretRotate(Wire):
    """A new signing secret (omit it to have Cairn generate one where the provider lets
    you type it); the previous one keeps verifying for ``overlap`` (e.g. ``24h``, ``0``)."""

    signing_secret: str | None = None
    overlap: str = "24h"


class SecretRotated(BaseModel):
    """The new secret (shown once) and when the previous one stops verifying."""

    source: Source
    signing_secret: str
    previous_valid_until: str | None


class ScheduleCreate(Wire):
    """A cron schedule; ticks are computed in ``timezone``."""

    label: Label
    cron: str = Field(description="Five-field cron expression, e.g. '0 2 * * *'")
    timezone: str = "UTC"


class CredentialSet(Wire):
    """A model backend's API key; write-only, never returned."""

    api_key: str


class Credential(BaseModel):
    """Which backend has a stored key, and since when."""

    backend: str
    created_at: str
    updated_at: str


class CredentialDeleted(BaseModel):
    """A stored key was forgotten."""

    backend: str
    deleted: bool
