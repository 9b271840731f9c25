"""Big ledgers, fast: agents created through the services, runs bulk-inserted in batches.

Firing a million runs through the runner would take far longer than the benchmarks that
read them, so the runs are inserted with SQLAlchemy core into the store's own ``runs``
table, in a few big transactions. That is the one place the benchmarks touch SQLAlchemy.
The rows copy one real run per agent, fired through the runner first (so the JSON columns
keep the shape of whatever ``src/`` writes today), take their run ids from
``cairn.ids.new_id`` (so they sort by time), and are spread over agents, statuses, kinds
and triggers so that filtered listings select realistic fractions. Run events are not
written for bulk rows: no listing reads them.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy import insert

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run
from cairn.ids import new_id
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.sources import available_sources
from cairn.store.schema import runs

SANDBOX = "default"

# (slug, share of the runs). ``support`` is the agent the listings ask about.
AGENT_SHARES: tuple[tuple[str, float], ...] = (
    ("support", 0.4),
    ("triage", 0.3),
    ("reporter", 0.2),
    ("digest", 0.1),
)
STATUS_SHARES: tuple[tuple[str, float], ...] = (
    ("succeeded", 0.85),
    ("failed", 0.10),
    ("cancelled", 0.05),
)
KIND_SHARES: tuple[tuple[str, float], ...] = (
    ("trigger", 0.70),
    ("test", 0.15),
    ("manual", 0.10),
    ("oneshot", 0.05),
)
# Each agent has three triggers, fired in these proportions.
TRIGGER_SHARES = (0.6, 0.3, 0.1)

LOOKUP_SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "text": "Looking the order up. ",
            "tool_calls": [
                {
                    "name": "json_extract",
                    "arguments": {"document": "{{event}}", "path": "order_id"},
                }
            ],
        },
        {"text": "Order {{results.0}} is on its way."},
    ]
}


@dataclass(slots=True)
class LedgerSummary:
    """What ``populate`` wrote, so the benchmarks can check what they read back."""

    runs: int = 0
    seconds: float = 0.0
    per_agent: dict[str, int] = field(default_factory=dict)
    newest: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, list[str]] = field(default_factory=dict)
    capped: bool = False


async def create_agents(app: App, slugs: list[str] | None = None) -> dict[str, Agent]:
    """Create the benchmark agents (scripted, builtin tools) through the agent service."""
    made: dict[str, Agent] = {}
    for slug in slugs or [slug for slug, _ in AGENT_SHARES]:
        agent, _warnings = await create_agent(
            app,
            SANDBOX,
            AgentSpec(
                slug=slug,
                system_prompt=f"You are the {slug} agent. Look the order up, then answer.",
                tool_sources=["builtin"],
                model_settings=ModelSettings(script=LOOKUP_SCRIPT),
            ),
        )
        made[slug] = agent
    return made


Shape = tuple[str, str, str, int]
"""What varies between bulk rows: agent slug, status, kind, trigger index."""


def _random_shapes(rng: random.Random, slugs: list[str]) -> Callable[[int], list[Shape]]:
    """Draw shapes with the module's shares (agents restricted to ``slugs``)."""
    agent_cum = _cumulative(tuple(share for slug, share in AGENT_SHARES if slug in slugs))
    statuses = [s for s, _ in STATUS_SHARES]
    status_cum = _cumulative(tuple(share for _, share in STATUS_SHARES))
    kinds = [k for k, _ in KIND_SHARES]
    kind_cum = _cumulative(tuple(share for _, share in KIND_SHARES))
    trigger_cum = _cumulative(TRIGGER_SHARES)

    def draw(size: int) -> list[Shape]:
        return list(
            zip(
                rng.choices(slugs, cum_weights=agent_cum, k=size),
                rng.choices(statuses, cum_weights=status_cum, k=size),
                rng.choices(kinds, cum_weights=kind_cum, k=size),
                rng.choices(range(len(TRIGGER_SHARES)), cum_weights=trigger_cum, k=size),
                strict=True,
            )
        )

    return draw


def _cycle(pattern: Sequence[Shape]) -> Callable[[int], list[Shape]]:
    """Repeat ``pattern`` in order, across calls."""
    shapes = itertools.cycle(pattern)
    return lambda size: list(itertools.islice(shapes, size))


def _cumulative(shares: tuple[float, ...]) -> list[float]:
    return list(itertools.accumulate(shares))


async def _sample_runs(app: App, agents: dict[str, Agent]) -> dict[str, Run]:
    """Fire each agent once for real: the bulk rows copy these rows' JSON shapes, so they
    keep up with the domain types whatever ``src/`` changes."""
    samples: dict[str, Run] = {}
    for slug, agent in agents.items():
        available = available_sources(app, agent.sandbox_id)
        run = await app.runner.fire(agent, {"order_id": "A-0"}, available, kind="test")
        if run.status != "succeeded" or len(run.tool_calls) != 1:
            raise RuntimeError(f"sample run of {slug} is {run.status}: {run.error_message}")
        samples[slug] = run
    return samples


def _templates(sample: Run) -> dict[str, dict[str, Any]]:
    """A row per final status, from a real run, without the per-run columns."""
    trace = sample.tool_resolution_trace
    common: dict[str, Any] = {
        "sandbox_id": sample.sandbox_id,
        "agent_id": sample.agent_id,
        "agent_slug": sample.agent_slug,
        "agent_version": sample.agent_version,
        "model": sample.model,
        "tokens_in": sample.usage.tokens_in,
        "tokens_out": sample.usage.tokens_out,
        "cache_read_tokens": sample.usage.cache_read_tokens,
        "cache_write_tokens": sample.usage.cache_write_tokens,
        "cost_micros": sample.cost_micros,
        "tool_resolution_trace": trace.to_dict() if trace else None,
    }
    return {
        "succeeded": common
        | {
            "status": "succeeded",
            "outcome": sample.outcome,
            "output_text": sample.output_text,
            "tool_calls": [call.to_dict() for call in sample.tool_calls],
            "duration_ms": sample.duration_ms,
            "error_message": None,
            "error_type": None,
        },
        "failed": common
        | {
            "status": "failed",
            "outcome": "interrupted",
            "output_text": "",
            "tool_calls": [],
            "duration_ms": 0.5,
            "error_message": "model backend 'scripted' raised RuntimeError: boom",
            "error_type": "model_error",
        },
        "cancelled": common
        | {
            "status": "cancelled",
            "outcome": "interrupted",
            "output_text": "",
            "tool_calls": [],
            "duration_ms": 0.3,
            "error_message": "the run was cancelled before it finished",
            "error_type": "cancelled",
        },
    }


def _check_columns(row: dict[str, Any]) -> None:
    """Fail loudly if the schema moved away from the rows built here."""
    names = {c.name for c in runs.c}
    unknown = sorted(set(row) - names)
    missing = sorted(
        c.name for c in runs.c if not c.nullable and c.default is None and c.name not in row
    )
    if unknown or missing:
        raise RuntimeError(
            f"bench rows do not fit the runs table: unknown {unknown}, missing {missing}"
        )


def populate(
    app: App,
    agents: dict[str, Agent],
    total: int,
    *,
    seed: int = 7,
    batch: int = 50_000,
    budget_s: float | None = None,
    fallback_total: int | None = None,
    pattern: Sequence[Shape] | None = None,
) -> LedgerSummary:
    """Fire one real run per agent that gets runs, then insert finished runs spread over
    them in transactions of ``batch`` until the ledger holds ``total`` (bulk rows are newer).

    With ``budget_s`` and ``fallback_total``: if the rate of the first batches says the
    whole ledger would take longer than ``budget_s``, stop at ``fallback_total`` instead
    (``capped`` tells the caller to say so). With ``pattern``, the bulk rows repeat it in
    order instead of being drawn at random with the module's shares."""
    wanted = agents.keys() if pattern is None else {shape[0] for shape in pattern}
    slugs = [slug for slug, _ in AGENT_SHARES if slug in agents and slug in wanted]
    samples = anyio.run(_sample_runs, app, {slug: agents[slug] for slug in slugs})
    templates = {slug: _templates(samples[slug]) for slug in slugs}
    summary = LedgerSummary(
        runs=len(samples),
        per_agent=dict.fromkeys(slugs, 1),
        newest={slug: run.run_id for slug, run in samples.items()},
        triggers={slug: [new_id("trg") for _ in TRIGGER_SHARES] for slug in slugs},
    )
    draw = _random_shapes(random.Random(seed), slugs) if pattern is None else _cycle(pattern)
    started = time.perf_counter()
    target = total
    while summary.runs < target:
        size = min(batch, target - summary.runs)
        now = datetime.now(UTC)
        shapes = draw(size)
        rows: list[dict[str, Any]] = []
        for slug, status, kind, trig in shapes:
            run_id = new_id("run")
            rows.append(
                templates[slug][status]
                | {
                    "run_id": run_id,
                    "kind": kind,
                    "trigger_id": summary.triggers[slug][trig] if kind == "trigger" else None,
                    "event_payload": {"order_id": f"A-{summary.runs + len(rows)}"},
                    "created_at": now,
                    "started_at": now,
                    "finished_at": now,
                    "heartbeat_at": now,
                }
            )
            summary.per_agent[slug] += 1
            summary.newest[slug] = run_id
        _check_columns(rows[0])
        with app.store.begin() as conn:
            conn.execute(insert(runs), rows)
        summary.runs += size
        if budget_s is not None and fallback_total is not None and target > fallback_total:
            elapsed = time.perf_counter() - started
            if elapsed / summary.runs * total > budget_s:
                target = max(fallback_total, summary.runs)
                summary.capped = True
    summary.seconds = time.perf_counter() - started
    return summary
