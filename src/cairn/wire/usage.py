"""Wire models for cost-watch: usage reports, thresholds, runaway flags, enforcements.

A module of ``cairn.wire`` so the usage routes own their shapes (as ``connections``
does); the same rules hold: unknown request fields are refused, money is integer
micro-units (``cost_micros``), and a cost the price table cannot estimate is ``null``,
never 0.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from cairn.domain.usage import MAX_LIMIT, ThresholdMetric, UsageBy
from cairn.wire import Wire


class UsageRow(BaseModel):
    """One group over the window."""

    key: str | None = Field(
        description="The agent slug, trigger id, model, or the hour's start (ISO); null groups "
        "runs with no trigger (manual, test, one-shot) or no recorded model"
    )
    runs: int
    tokens_in: int
    tokens_out: int
    tokens: int = Field(description="tokens_in + tokens_out")
    cost_micros: int | None = Field(
        description="Sum of the known estimated costs, in micro-units; null when no run of "
        "the group has a price"
    )
    unpriced_runs: int = Field(description="Runs whose model has no price (not in cost_micros)")
    series: list[int] = Field(
        description="Tokens per hour of the window, oldest first (by=hour: that hour alone)"
    )


class UsageReport(BaseModel):
    """Usage of the sandbox's runs created in ``[since, until)``."""

    sandbox_id: str
    by: UsageBy
    since: str
    until: str
    bucket_s: float = Field(description="Seconds per point of each series (3600)")
    agent: str | None
    trigger_id: str | None
    rows: list[UsageRow]
    totals: UsageRow


class ThresholdSet(Wire):
    """An agent's limits per hour; at least one is required."""

    tokens_per_hour: int | None = Field(
        default=None, ge=1, le=MAX_LIMIT, description="tokens in + out"
    )
    cost_micros_per_hour: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description="Estimated cost in micro-units (1.50 = 1500000)",
    )
    pause_triggers: bool = Field(
        default=False, description="Enforcing a breach pauses the agent's active triggers"
    )


class Threshold(BaseModel):
    """A stored threshold."""

    sandbox_id: str
    agent_id: str
    agent_slug: str
    tokens_per_hour: int | None
    cost_micros_per_hour: int | None
    pause_triggers: bool
    created_at: str | None
    updated_at: str | None


class ThresholdCleared(BaseModel):
    """The result of removing a threshold."""

    agent_slug: str
    cleared: bool = Field(description="False when the agent had no threshold")


class RunawayFlag(BaseModel):
    """An agent over a threshold in the hour ``[window_start, window_end)``."""

    slug: str
    metric: ThresholdMetric
    value: int
    threshold: int
    window_start: str
    window_end: str
    pause_triggers: bool
    paused_trigger_ids: list[str]
    message: str


class Enforcement(BaseModel):
    """A breach that paused an agent's triggers, and why."""

    enforcement_id: str
    sandbox_id: str
    agent_id: str
    agent_slug: str
    metric: ThresholdMetric
    value: int
    threshold: int
    window_start: str
    trigger_ids: list[str]
    reason: str
    enforced_at: str


class UsageQuery(BaseModel):
    """The query parameters of a usage report."""

    since: str = Field("24h", description="Window up to now: 90m, 24h, 7d, 2w")
    by: str = Field("agent", description="agent, trigger, model or hour")
    agent: str | None = Field(None, description="Only this agent (slug)")
    trigger_id: str | None = Field(None, description="Only this trigger")


class EnforcementQuery(BaseModel):
    """The query parameters of the enforcement listing."""

    agent: str | None = Field(None, description="Only this agent (slug)")
    limit: int = Field(50, ge=1, le=500)
