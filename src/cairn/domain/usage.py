"""Cost-watch: token and cost aggregates over a window, per-agent thresholds, runaways.

A usage report sums the run rows created in a window ``[since, until)`` of one sandbox,
grouped by one dimension (``agent`` slug, ``trigger`` id, ``model``, or ``hour``), with a
series of tokens (in + out) per hour of the window for each group. Costs are estimated per
run from the price table when the run is written, in integer micro-units; a run whose model
has no price carries no cost, so a group's ``cost_micros`` is the sum of its *known* costs
and ``unpriced_runs`` says how many runs that sum leaves out (``cost_micros`` is ``None``
when every run of the group is unpriced): an unpriced model is never shown as free.

A threshold caps an agent's tokens and/or estimated cost per hour. ``runaway`` means the
last hour went over it; when the threshold says ``pause_triggers``, enforcing it pauses the
agent's active triggers and records an ``Enforcement`` naming the measurement and the
triggers paused (what a paused trigger points at when someone asks why it is paused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cairn.text import iso, record

UsageBy = Literal["agent", "trigger", "model", "hour"]
USAGE_BY: tuple[UsageBy, ...] = ("agent", "trigger", "model", "hour")
ThresholdMetric = Literal["tokens_per_hour", "cost_micros_per_hour"]
BUCKET_S = 3600.0
"""The series resolution: one point per hour of the window."""
MAX_LIMIT = 10**15
"""The largest threshold accepted (a quadrillion tokens or micro-units an hour): far beyond
any real agent, well inside the 64-bit columns that store it."""


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """What a usage aggregate selects: the sandbox's runs created in ``[since, until)``
    (epoch seconds, turned into a ``run_id`` range by the store), optionally of one agent
    and/or one trigger, grouped ``by`` one dimension and into buckets of ``bucket_s``.

    ``up_to_now`` drops the upper bound: a window ending now then also counts runs created
    in the current millisecond, or stamped a little ahead by another machine's clock (they
    fall into the last bucket)."""

    sandbox_id: str
    since: float
    until: float
    by: UsageBy = "agent"
    agent_id: str | None = None
    trigger_id: str | None = None
    bucket_s: float = BUCKET_S
    up_to_now: bool = False

    @property
    def first_bucket_start(self) -> float:
        """Where bucket 0 starts: buckets are aligned on the clock (whole hours), so the
        first and last may be partial."""
        return math.floor(self.since / self.bucket_s) * self.bucket_s

    @property
    def buckets(self) -> int:
        """How many clock-aligned buckets the window touches."""
        last = math.ceil(self.until / self.bucket_s - 1e-9) - 1
        return max(1, last - math.floor(self.since / self.bucket_s) + 1)


@dataclass(frozen=True, slots=True)
class UsageCell:
    """One group in one bucket, as the store aggregates it. ``key`` is the group (a slug, a
    trigger id, a model; ``None`` for runs with no trigger or no model); ``bucket`` counts
    buckets from the window's start."""

    key: str | None
    bucket: int
    runs: int
    tokens_in: int
    tokens_out: int
    cost_micros: int | None
    priced_runs: int


@dataclass(slots=True)
class UsageRow:
    """One group over the whole window. ``series`` is tokens (in + out) per hour of the
    window, oldest first (for ``by="hour"`` rows: that hour alone)."""

    key: str | None
    runs: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_micros: int | None = None
    series: list[int] = field(default_factory=list)
    unpriced_runs: int = 0

    @property
    def tokens(self) -> int:
        """Tokens in and out."""
        return self.tokens_in + self.tokens_out

    def add(self, cell: UsageCell) -> None:
        """Fold one bucket's aggregate into the row."""
        self.runs += cell.runs
        self.tokens_in += cell.tokens_in
        self.tokens_out += cell.tokens_out
        self.unpriced_runs += cell.runs - cell.priced_runs
        if cell.cost_micros is not None:
            self.cost_micros = (self.cost_micros or 0) + cell.cost_micros

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self) | {"tokens": self.tokens, "series": list(self.series)}


@dataclass(slots=True)
class UsageReport:
    """Usage of one sandbox over ``[since, until)``: a row per group and the totals.

    Rows come largest first (by tokens) except ``by="hour"``, which lists every hour of the
    window oldest first, empty hours included."""

    sandbox_id: str
    by: UsageBy
    since: datetime
    until: datetime
    rows: list[UsageRow]
    totals: UsageRow
    agent: str | None = None
    trigger_id: str | None = None
    bucket_s: float = BUCKET_S

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        rows = [row.to_dict() for row in self.rows]
        return record(self) | {"rows": rows, "totals": self.totals.to_dict()}


@dataclass(frozen=True, slots=True)
class UsageThreshold:
    """An agent's cost-watch limits per hour (either may be ``None``: not watched)."""

    sandbox_id: str
    agent_id: str
    agent_slug: str
    tokens_per_hour: int | None = None
    cost_micros_per_hour: int | None = None
    pause_triggers: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self)


def format_micros(micros: int) -> str:
    """Micro-units as currency units with four decimals, rounded half up with integers (no
    float drift): ``1_234_567`` → ``"1.2346"``; a non-zero amount below that shows as
    ``"<0.0001"``, never as zero."""
    if 0 < micros < 50:
        return "<0.0001"
    units = (micros + 50) // 100
    return f"{units // 10_000:,}.{units % 10_000:04d}"


def _measure(metric: ThresholdMetric, amount: int) -> str:
    if metric == "tokens_per_hour":
        return f"{amount:,} tokens"
    return f"an estimated {format_micros(amount)} in cost"


@dataclass(frozen=True, slots=True)
class RunawayFlag:
    """An agent over one of its thresholds in the hour from ``window_start``.

    ``pause_triggers`` repeats the threshold's setting; ``paused_trigger_ids`` lists what an
    enforcement paused (empty when flagged only, or when nothing was active)."""

    slug: str
    metric: ThresholdMetric
    value: int
    threshold: int
    window_start: datetime
    pause_triggers: bool = False
    paused_trigger_ids: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The finding in plain English."""
        start = self.window_start.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"agent {self.slug} used {_measure(self.metric, self.value)} in the hour from "
            f"{start}, over its threshold of {_measure(self.metric, self.threshold)} per hour"
        )

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self) | {
            "window_end": iso(self.window_start + timedelta(seconds=BUCKET_S)),
            "paused_trigger_ids": list(self.paused_trigger_ids),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Enforcement:
    """A record that a threshold breach paused an agent's triggers, and why."""

    enforcement_id: str
    sandbox_id: str
    agent_id: str
    agent_slug: str
    metric: ThresholdMetric
    value: int
    threshold: int
    window_start: datetime
    trigger_ids: tuple[str, ...]
    reason: str
    enforced_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The shown form."""
        return record(self) | {"trigger_ids": list(self.trigger_ids)}
