"""The ledger's tables.

Data model
----------
``sandboxes`` is the tenancy boundary: every other row carries a ``sandbox_id`` and every
query filters on it first, so one sandbox never reads another's rows.

``agents`` are stored configurations, unique by ``(sandbox_id, slug)``; ``version`` goes
up when the system prompt changes. ``sources`` are tool and event (webhook, schedule) sources; their
secrets live encrypted in ``secret_ciphertext`` and nowhere else.

``runs`` is the ledger proper: one row per fire, written ``queued`` when the fire is
accepted and updated in place until it is final. Ids are time-sortable (``cairn.ids``),
so ``run_id`` doubles as the creation order: listings walk an index newest-first with a
``run_id < :before`` cursor (keyset pagination, never OFFSET), and a time window becomes
an id range on the same index. Tool calls and the tool-resolution trace are JSON on the
row because they are always read with it. ``run_events`` holds the ordered live stream
(text deltas, tool calls and results, finish, error), numbered per run by ``seq``.

``api_keys`` authenticate API calls: each key belongs to one sandbox and carries a role;
only a SHA-256 of its secret part is stored. ``runs.cancel_requested_at`` lets any process
ask the process running a run to stop it; ``runs.replay_of`` points a replay at the run
whose event it re-fired; ``runs.traceparent`` keeps the W3C trace context of the request
that fired it, so the run's exported trace joins the caller's.

``triggers`` bind an agent to a source's events, with an event-type filter, a structured
payload filter and an hourly cap kept as a fixed window (``window_started_at``,
``window_fires``) so that one conditional ``UPDATE`` decides a fire atomically, even under
concurrency. ``events`` stores every event a source received, once (unique per source by
the sender's event id), including rejected deliveries, with how it arrived (``delivery``:
the webhook provider, its delivery id, where the type came from, the headers that matter);
``trigger_decisions`` records what
every trigger on the source decided about it: fired (with the run), filtered out (which
filter), rate-limited, paused, agent archived. ``connections`` hold OAuth tokens for
integration sources, encrypted like other secrets; ``credentials`` hold model-backend API
keys per sandbox, encrypted the same way (the environment is the fallback).

``browser_sessions`` are the dashboard's logins: a browser's cookie carries a session
token (only its SHA-256 is stored), never an API key. Each session is scoped to one sandbox
with a role, expires, and ends when it is revoked, when the user logs out, or when the key
it was opened with (``key_id``) is revoked.

The ``runs`` table is also the backlog (docs/ledger.md): a fire is accepted by writing its
row ``queued``; a worker claims it with one conditional ``UPDATE … WHERE status =
'queued'`` that records its ``worker_id``; while it runs, the worker renews the row's
``heartbeat_at`` (its lease). Only a ``running`` row whose lease expired is ever reaped;
a queued row waits as long as it must. ``workers`` lists the worker processes with their
own heartbeat, for ``cairn status``.

``usage_thresholds`` hold an agent's cost-watch limits (tokens and/or estimated cost per
hour, and whether a breach pauses its triggers); ``threshold_enforcements`` keeps one row
per time a breach paused triggers: which agent, which metric, the measured value and the
limit, the hour it was measured over, and the triggers paused, so a paused trigger can
always say why.

Every column that a listing filters on is the second column of an index that starts with
``sandbox_id`` and ends with ``run_id``, so "the last 20 runs of an agent" reads 20 index
entries whether the ledger holds a hundred runs or a million.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sandboxes = Table(
    "sandboxes",
    metadata,
    Column("sandbox_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("system_prompt", Text, nullable=False),
    Column("tool_sources", JSON, nullable=True),
    Column("tool_allowlist", JSON, nullable=False),
    Column("model_settings", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("sandbox_id", "slug"),
)

sources = Table(
    "sources",
    metadata,
    Column("source_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("label", String(200), nullable=False),
    Column("config", JSON, nullable=False),
    Column("secret_ciphertext", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=True),
    UniqueConstraint("sandbox_id", "label"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("agent_id", String(40), ForeignKey("agents.agent_id"), nullable=False),
    Column("agent_slug", String(64), nullable=False),
    Column("agent_version", Integer, nullable=False),
    Column("trigger_id", String(40), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("model", String(200), nullable=True),
    Column("event_payload", JSON, nullable=True),
    Column("output_text", Text, nullable=False, default=""),
    Column("tool_calls", JSON, nullable=False),
    Column("tokens_in", BigInteger, nullable=False, default=0),
    Column("tokens_out", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("cache_write_tokens", BigInteger, nullable=False, default=0),
    Column("cost_micros", BigInteger, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_type", String(64), nullable=True),
    Column("tool_resolution_trace", JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
    Column("cancel_requested_at", UTCDateTime(), nullable=True),
    Column("replay_of", String(40), nullable=True),
    Column("worker_id", String(120), nullable=True),
    Column("traceparent", String(64), nullable=True),
    # In the hourly usage rollup yet? (``cairn.store.usage``; false while live.)
    Column("usage_rolled", Boolean, nullable=False, default=False, server_default=false()),
    Index(None, "sandbox_id", "run_id"),
    Index(None, "sandbox_id", "agent_id", "run_id"),
    Index(None, "sandbox_id", "agent_id", "status", "run_id"),
    Index(None, "sandbox_id", "trigger_id", "run_id"),
    Index(None, "status", "heartbeat_at"),
    Index(None, "status", "run_id"),
    Index(None, "status", "sandbox_id"),  # who else has runs waiting (a worker's share)
)

workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(120), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("executor", String(32), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("stopped_at", UTCDateTime(), nullable=True),
)
# Only the runs not yet in the usage rollup (live ones, and any a rebuild has still to
# add): a window's usage reads these raw beside the rollup, so the index stays tiny.
Index(
    "ix_runs_usage_pending",
    runs.c.sandbox_id,
    runs.c.run_id,
    sqlite_where=runs.c.usage_rolled == false(),
    postgresql_where=runs.c.usage_rolled == false(),
)

usage_hourly = Table(
    "usage_hourly",
    metadata,
    # One row per sandbox, hour and group: ``id_hour`` is the hour of the runs' ids (what a
    # window selects by), ``hour`` that of their ``created_at`` (what the series buckets
    # by); they differ only for a run created in the microseconds before an hour turned.
    Column("sandbox_id", String(64), nullable=False),
    Column("id_hour", BigInteger, nullable=False),
    Column("hour", BigInteger, nullable=False),
    Column("agent_id", String(40), nullable=False),
    Column("agent_slug", String(64), nullable=False),
    Column("trigger_key", String(40), nullable=False),  # "" for runs without a trigger
    Column("model_key", String(200), nullable=False),  # "" for runs without a model
    Column("runs", BigInteger, nullable=False),
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),  # over the priced runs only
    Column("priced_runs", BigInteger, nullable=False),
    PrimaryKeyConstraint(
        "sandbox_id", "id_hour", "hour", "agent_id", "agent_slug", "trigger_key", "model_key"
    ),
    sqlite_with_rowid=False,  # clustered on the key: a window reads one contiguous range
)

usage_hourly_agents = Table(
    "usage_hourly_agents",
    metadata,
    # The same sums per agent only (a dozen times fewer rows than per agent, trigger and
    # model): what usage by agent or by hour reads when no trigger is asked about.
    Column("sandbox_id", String(64), nullable=False),
    Column("id_hour", BigInteger, nullable=False),
    Column("hour", BigInteger, nullable=False),
    Column("agent_id", String(40), nullable=False),
    Column("agent_slug", String(64), nullable=False),
    Column("runs", BigInteger, nullable=False),
    Column("tokens_in", BigInteger, nullable=False),
    Column("tokens_out", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("priced_runs", BigInteger, nullable=False),
    PrimaryKeyConstraint("sandbox_id", "id_hour", "hour", "agent_id", "agent_slug"),
    sqlite_with_rowid=False,
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("run_id", "seq"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "sandbox_id", "key_id"),
)

triggers = Table(
    "triggers",
    metadata,
    Column("trigger_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("agent_id", String(40), ForeignKey("agents.agent_id"), nullable=False),
    Column("data_source_id", String(40), nullable=False),
    Column("event_type_filter", String(200), nullable=False),
    Column("filter_config", JSON, nullable=True),
    Column("rate_limit_per_hour", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("fire_count", BigInteger, nullable=False, default=0),
    Column("last_fired_at", UTCDateTime(), nullable=True),
    Column("window_started_at", UTCDateTime(), nullable=True),
    Column("window_fires", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "sandbox_id", "data_source_id"),
    Index(None, "sandbox_id", "agent_id"),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("source_id", String(40), nullable=False),
    Column("sender_event_id", String(200), nullable=True),
    Column("event_type", String(200), nullable=True),
    Column("payload", JSON, nullable=True),
    Column("status", String(16), nullable=False),
    Column("reject_reason", Text, nullable=True),
    Column("received_at", UTCDateTime(), nullable=False),
    # How it arrived: provider, delivery id, where the type came from, kept headers.
    Column("delivery", JSON, nullable=True),
    UniqueConstraint("source_id", "sender_event_id"),
    Index(None, "sandbox_id", "event_id"),
    Index(None, "sandbox_id", "source_id", "event_id"),
)

trigger_decisions = Table(
    "trigger_decisions",
    metadata,
    Column(
        "event_id", String(40), ForeignKey("events.event_id", ondelete="CASCADE"), nullable=False
    ),
    Column("trigger_id", String(40), nullable=False),
    Column("decision", String(32), nullable=False),
    Column("detail", JSON, nullable=True),
    Column("run_id", String(40), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("event_id", "trigger_id"),
    Index(None, "trigger_id", "decided_at"),
)

connections = Table(
    "connections",
    metadata,
    Column("connection_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("app_slug", String(64), nullable=False),
    Column("account_label", String(200), nullable=False),
    Column("token_ciphertext", Text, nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "sandbox_id", "app_slug"),
)

usage_thresholds = Table(
    "usage_thresholds",
    metadata,
    Column("agent_id", String(40), ForeignKey("agents.agent_id"), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("tokens_per_hour", BigInteger, nullable=True),
    Column("cost_micros_per_hour", BigInteger, nullable=True),
    Column("pause_triggers", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "sandbox_id", "agent_id"),
)

threshold_enforcements = Table(
    "threshold_enforcements",
    metadata,
    Column("enforcement_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("agent_id", String(40), nullable=False),
    Column("agent_slug", String(64), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("threshold", BigInteger, nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("trigger_ids", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("enforced_at", UTCDateTime(), nullable=False),
    Index(None, "sandbox_id", "agent_id", "enforcement_id"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("backend", String(64), nullable=False),
    Column("secret_ciphertext", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("sandbox_id", "backend"),
)


browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("session_id", String(40), primary_key=True),
    Column("sandbox_id", String(64), ForeignKey("sandboxes.sandbox_id"), nullable=False),
    Column("key_id", String(40), nullable=True),
    Column("role", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index(None, "key_id"),
)
