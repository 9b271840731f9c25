"""Attribute, span and metric names Cairn exports, in one place.

``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions (Development
stability) as published in ``opentelemetry-semantic-conventions`` 0.66b2; a test checks
each against that package, so a rename upstream fails here rather than in a dashboard.
``cairn.*`` names are Cairn's own: the run ledger's fields and the tool-resolution trace,
which the conventions have no words for. Plain strings, so building spans needs no
OpenTelemetry import.
"""

from __future__ import annotations

# --- gen_ai.* (checked against the semconv package) ------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
AGENT_VERSION = "gen_ai.agent.version"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_NAMES = (
    OPERATION_NAME,
    PROVIDER_NAME,
    AGENT_NAME,
    AGENT_ID,
    AGENT_VERSION,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    RESPONSE_FINISH_REASONS,
    USAGE_INPUT_TOKENS,
    USAGE_OUTPUT_TOKENS,
    USAGE_CACHE_READ_INPUT_TOKENS,
    USAGE_CACHE_CREATION_INPUT_TOKENS,
    TOOL_NAME,
    TOOL_CALL_ID,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_RESULT,
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    TOKEN_TYPE,
)

# Values of gen_ai.operation.name.
INVOKE_AGENT = "invoke_agent"
CHAT = "chat"
EXECUTE_TOOL = "execute_tool"

# General conventions (stable).
ERROR_TYPE = "error.type"
HTTP_STATUS_CODE = "http.response.status_code"

# Metrics (gen_ai.* checked against the semconv package).
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_RUNS = "cairn.runs"
METRIC_RUN_DURATION = "cairn.run.duration"
METRIC_QUEUE_WAIT = "cairn.run.queue_wait"
METRIC_RESOLUTION_DURATION = "cairn.tools.resolution.duration"
METRIC_SOURCES_SKIPPED = "cairn.tools.sources_skipped"

# --- cairn.* ---------------------------------------------------------------------------
RUN_ID = "cairn.run.id"
RUN_KIND = "cairn.run.kind"
RUN_STATUS = "cairn.run.status"
RUN_OUTCOME = "cairn.run.outcome"
RUN_COST_MICROS = "cairn.run.cost_micros"
RUN_QUEUE_WAIT_MS = "cairn.run.queue_wait_ms"
RUN_REPLAY_OF = "cairn.run.replay_of"
TRIGGER_ID = "cairn.trigger.id"
SANDBOX_ID = "cairn.sandbox.id"
CAIRN_AGENT_VERSION = "cairn.agent.version"
TURN = "cairn.turn"
SOURCES_RESOLVED = "cairn.tools.sources_resolved"
SOURCES_SKIPPED = "cairn.tools.sources_skipped"
SOURCES_SKIPPED_REASONS = "cairn.tools.sources_skipped.reasons"
ADVERTISED = "cairn.tools.advertised"
ADVERTISED_COUNT = "cairn.tools.advertised.count"
ALLOWLIST_FILTERED_OUT = "cairn.tools.allowlist_filtered_out"
ALLOWLIST_MISSING_ENTRIES = "cairn.tools.allowlist_missing_entries"
RESOLUTION_DURATION_MS = "cairn.tools.resolution.duration_ms"
SOURCE_ID = "cairn.source.id"
SOURCE_KIND = "cairn.source.kind"
SOURCE_LABEL = "cairn.source.label"
SOURCE_TOOL_COUNT = "cairn.source.tool_count"
SKIP_REASON = "cairn.source.skip_reason"
SKIP_MESSAGE = "cairn.source.skip_message"
RETRY_ATTEMPT = "cairn.retry.attempt"
RETRY_REASON = "cairn.retry.reason"
RETRY_WAIT_S = "cairn.retry.wait_s"

# Span names of Cairn's own operations; span event names.
RESOLVE_TOOLS = "cairn.resolve_tools"
EVENT_SOURCE_RESOLVED = "cairn.source.resolved"
EVENT_SOURCE_SKIPPED = "cairn.source.skipped"
EVENT_RETRY = "cairn.model.retry"

# Backends as gen_ai.provider.name values (the conventions' well-known ones where they
# exist; the offline scripted backend is Cairn's own).
PROVIDERS = {
    "anthropic": "anthropic",
    "openai": "openai",
    "google": "gcp.gemini",
    "scripted": "cairn.scripted",
}
