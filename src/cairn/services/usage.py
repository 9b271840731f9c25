"""Cost-watch: usage over a window, per-agent thresholds, runaway agents and enforcement.

``usage`` answers "what did my agents spend?" from the run rows alone (tokens and the cost
estimated when each run was written). ``set_threshold`` caps an agent's tokens and/or cost
per hour; ``runaway_agents`` compares the last hour with those caps (what ``cairn doctor``
reports); ``enforce_thresholds`` pauses the triggers of runaway agents whose threshold asks
for it and keeps a record of why (``list_enforcements``, ``pause_reason``). Nothing here
runs on its own: enforcement happens when asked (``cairn usage enforce``, the API, cron).

The domain types live in ``cairn.domain.usage`` and are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from cairn.domain.usage import (
    BUCKET_S,
    MAX_LIMIT,
    USAGE_BY,
    Enforcement,
    RunawayFlag,
    ThresholdMetric,
    UsageBy,
    UsageCell,
    UsageFilter,
    UsageReport,
    UsageRow,
    UsageThreshold,
    format_micros,
)
from cairn.errors import UsageError
from cairn.ids import new_id
from cairn.services import triggers as trigger_service
from cairn.services.app import App
from cairn.store import agents as agent_store
from cairn.store import usage as usage_store

__all__ = [
    "Enforcement",
    "RunawayFlag",
    "UsageReport",
    "UsageRow",
    "UsageThreshold",
    "clear_threshold",
    "enforce_thresholds",
    "format_micros",
    "get_threshold",
    "list_enforcements",
    "list_thresholds",
    "pause_reason",
    "runaway_agents",
    "set_threshold",
    "usage",
]

MAX_WINDOW_S = 366 * 86400.0
"""The longest window a report covers (a year of hourly points)."""
TOTAL_KEY = "total"


def _check_by(by: str) -> UsageBy:
    if by not in USAGE_BY:
        raise UsageError(f"cannot group usage by {by!r}: use one of {', '.join(USAGE_BY)}")
    return by


def _check_window(since_s: float) -> None:
    if not since_s > 0:
        raise UsageError(f"usage window {since_s:g} s must be longer than 0 (e.g. 24h)")
    if since_s > MAX_WINDOW_S:
        raise UsageError(f"usage window {since_s:g} s is over the limit of 366 days")


def usage(
    app: App,
    sandbox_id: str,
    *,
    since_s: float = 86400.0,
    by: str = "agent",
    agent: str | None = None,
    trigger_id: str | None = None,
    until: float | None = None,
) -> UsageReport:
    """Runs, tokens and estimated cost of the runs created in the last ``since_s`` seconds
    (before ``until``, epoch seconds, default now), grouped ``by`` agent, trigger, model or
    hour; only agent ``agent`` (a slug) and/or trigger ``trigger_id`` when given.

    Raises ``UsageError`` for an unknown ``by`` or a bad window, ``NotFound`` for an
    unknown agent. A trigger id is not checked: a destroyed trigger's runs stay auditable."""
    grouping = _check_by(by)
    _check_window(since_s)
    end = time.time() if until is None else until
    with app.store.connect() as conn:
        agent_id = agent_store.get_agent(conn, sandbox_id, agent).agent_id if agent else None
        where = UsageFilter(
            sandbox_id=sandbox_id,
            since=end - since_s,
            until=end,
            by=grouping,
            agent_id=agent_id,
            trigger_id=trigger_id,
            up_to_now=until is None,
        )
        cells = usage_store.aggregate_usage(conn, where)
    rows, totals = _fold(where, cells)
    return UsageReport(
        sandbox_id=sandbox_id,
        by=grouping,
        since=datetime.fromtimestamp(where.since, UTC),
        until=datetime.fromtimestamp(where.until, UTC),
        rows=rows,
        totals=totals,
        agent=agent,
        trigger_id=trigger_id,
        bucket_s=where.bucket_s,
    )


def _fold(where: UsageFilter, cells: Iterable[UsageCell]) -> tuple[list[UsageRow], UsageRow]:
    """Rows with their hourly series, and the totals, from the store's per-bucket cells."""
    count = where.buckets
    totals = UsageRow(TOTAL_KEY, series=[0] * count)
    hourly = where.by == "hour"
    hours = [UsageRow(_bucket_label(where, i), series=[0]) for i in range(count)] if hourly else []
    groups: dict[str | None, UsageRow] = {}
    for cell in cells:
        # A run written a moment before the window's first id (created_at and run_id are
        # taken microseconds apart) still belongs to the window's first hour.
        index = min(max(cell.bucket, 0), count - 1)
        tokens = cell.tokens_in + cell.tokens_out
        if hourly:  # an hour's row: that hour alone
            row, point = hours[index], 0
        else:
            row, point = groups.get(cell.key) or UsageRow(cell.key, series=[0] * count), index
            groups[cell.key] = row
        row.add(cell)
        row.series[point] += tokens
        totals.add(cell)
        totals.series[index] += tokens
    if hourly:
        return hours, totals
    ordered = sorted(
        groups.values(), key=lambda r: (-r.tokens, -r.runs, r.key is None, r.key or "")
    )
    return ordered, totals


def _bucket_label(where: UsageFilter, index: int) -> str:
    start = datetime.fromtimestamp(where.first_bucket_start + index * where.bucket_s, UTC)
    return start.isoformat(timespec="seconds")


# --- thresholds -------------------------------------------------------------------------


def _positive(name: str, value: int | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT
    ):
        raise UsageError(f"{name} {value!r} must be a whole number from 1 to {MAX_LIMIT:,}")


def set_threshold(
    app: App,
    sandbox_id: str,
    slug: str,
    *,
    tokens_per_hour: int | None = None,
    cost_micros_per_hour: int | None = None,
    pause_triggers: bool = False,
) -> UsageThreshold:
    """Watch agent ``slug``: flag it when an hour's tokens (in + out) or estimated cost (in
    micro-units) go over these; with ``pause_triggers``, enforcing pauses its triggers.
    Replaces the agent's previous threshold. Raises ``UsageError`` without any limit."""
    _positive("tokens per hour", tokens_per_hour)
    _positive("cost per hour (micro-units)", cost_micros_per_hour)
    if tokens_per_hour is None and cost_micros_per_hour is None:
        raise UsageError(
            "a threshold needs tokens per hour and/or a cost per hour "
            "(e.g. --tokens-per-hour 200000 or --cost-per-hour 1.50)"
        )
    with app.store.begin() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        usage_store.put_threshold(
            conn,
            UsageThreshold(
                sandbox_id=sandbox_id,
                agent_id=agent.agent_id,
                agent_slug=agent.slug,
                tokens_per_hour=tokens_per_hour,
                cost_micros_per_hour=cost_micros_per_hour,
                pause_triggers=pause_triggers,
            ),
        )
        stored = usage_store.get_threshold(conn, sandbox_id, agent.agent_id)
    assert stored is not None
    return stored


def get_threshold(app: App, sandbox_id: str, slug: str) -> UsageThreshold | None:
    """The agent's threshold, or ``None`` when it is not watched."""
    with app.store.connect() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        return usage_store.get_threshold(conn, sandbox_id, agent.agent_id)


def clear_threshold(app: App, sandbox_id: str, slug: str) -> bool:
    """Stop watching agent ``slug``; ``False`` if it was not watched."""
    with app.store.begin() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        return usage_store.delete_threshold(conn, sandbox_id, agent.agent_id)


def list_thresholds(app: App, sandbox_id: str) -> list[UsageThreshold]:
    """Every agent's threshold in the sandbox."""
    with app.store.connect() as conn:
        return usage_store.list_thresholds(conn, sandbox_id)


# --- runaways ---------------------------------------------------------------------------


def runaway_agents(app: App, sandbox_id: str, *, until: float | None = None) -> list[RunawayFlag]:
    """Agents over a threshold in the last hour (before ``until``, default now): a flag per
    metric exceeded, most over first. Runs without a known cost count toward tokens only."""
    thresholds = list_thresholds(app, sandbox_id)
    if not thresholds:
        return []
    report = usage(app, sandbox_id, since_s=BUCKET_S, by="agent", until=until)
    measured = {row.key: row for row in report.rows}
    flags: list[RunawayFlag] = []
    for threshold in thresholds:
        row = measured.get(threshold.agent_slug)
        if row is None:
            continue
        checks: list[tuple[ThresholdMetric, int | None, int | None]] = [
            ("tokens_per_hour", row.tokens, threshold.tokens_per_hour),
            ("cost_micros_per_hour", row.cost_micros, threshold.cost_micros_per_hour),
        ]
        for metric, value, limit in checks:
            if value is not None and limit is not None and value > limit:
                flags.append(
                    RunawayFlag(
                        slug=threshold.agent_slug,
                        metric=metric,
                        value=value,
                        threshold=limit,
                        window_start=report.since,
                        pause_triggers=threshold.pause_triggers,
                    )
                )
    return sorted(flags, key=lambda f: (-f.value / f.threshold, f.slug, f.metric))


def enforce_thresholds(
    app: App, sandbox_id: str, *, until: float | None = None
) -> list[RunawayFlag]:
    """Pause the active triggers of every runaway agent whose threshold says
    ``pause_triggers``, and record why (``list_enforcements``; the reason names the
    measurement, the limit and how to resume). Returns those agents' flags with the
    triggers paused; agents that are only flagged are left alone (see ``runaway_agents``)."""
    flags = [flag for flag in runaway_agents(app, sandbox_id, until=until) if flag.pause_triggers]
    by_agent: dict[str, list[RunawayFlag]] = {}
    for flag in flags:
        by_agent.setdefault(flag.slug, []).append(flag)
    enforced: list[RunawayFlag] = []
    for slug, agent_flags in by_agent.items():
        active = [
            trigger
            for trigger in trigger_service.list_triggers(app, sandbox_id, slug)
            if trigger.status == "active"
        ]
        paused = tuple(
            trigger_service.update_trigger(
                app, sandbox_id, trigger.trigger_id, status="paused"
            ).trigger_id
            for trigger in active
        )
        if paused:
            first = agent_flags[0]
            with app.store.begin() as conn:
                agent = agent_store.get_agent(conn, sandbox_id, slug)
                usage_store.record_enforcement(
                    conn,
                    Enforcement(
                        enforcement_id=new_id("enf"),
                        sandbox_id=sandbox_id,
                        agent_id=agent.agent_id,
                        agent_slug=slug,
                        metric=first.metric,
                        value=first.value,
                        threshold=first.threshold,
                        window_start=first.window_start,
                        trigger_ids=paused,
                        reason=_reason(agent_flags, paused),
                        enforced_at=datetime.now(UTC),
                    ),
                )
        enforced.extend(replace(flag, paused_trigger_ids=paused) for flag in agent_flags)
    return enforced


def _reason(flags: list[RunawayFlag], paused: tuple[str, ...]) -> str:
    slug = flags[0].slug
    found = "; and ".join(flag.message for flag in flags)
    noun = "trigger" if len(paused) == 1 else "triggers"
    resume = "; ".join(f"cairn agent trigger resume {trigger_id}" for trigger_id in paused)
    return (
        f"{found}. Cost-watch paused its {noun} {', '.join(paused)}. Once the cause is fixed, "
        f"resume with: {resume} (or raise the limit: cairn usage threshold {slug} …)"
    )


def list_enforcements(
    app: App, sandbox_id: str, slug: str | None = None, *, limit: int = 50
) -> list[Enforcement]:
    """Threshold enforcements that paused triggers, newest first (of one agent if given)."""
    with app.store.connect() as conn:
        agent_id = agent_store.get_agent(conn, sandbox_id, slug).agent_id if slug else None
        return usage_store.list_enforcements(conn, sandbox_id, agent_id=agent_id, limit=limit)


def pause_reason(app: App, sandbox_id: str, trigger_id: str) -> Enforcement | None:
    """The newest enforcement that paused ``trigger_id``, if cost-watch paused it (for
    explaining a ``paused`` decision); ``None`` when a person paused it or it is active.

    The records live in the ``threshold_enforcements`` table; a trigger changed after the
    enforcement (resumed and paused again) is taken as paused by a person."""
    trigger = trigger_service.get_trigger(app, sandbox_id, trigger_id)
    if trigger.status != "paused":
        return None
    with app.store.connect() as conn:
        for enforcement in usage_store.list_enforcements(
            conn, sandbox_id, agent_id=trigger.agent_id, limit=200
        ):
            # Paused again by hand after a resume: the record is about an earlier pause.
            current = trigger.updated_at is None or enforcement.enforced_at >= trigger.updated_at
            if trigger_id in enforcement.trigger_ids and current:
                return enforcement
    return None


# --- the hourly rollup ------------------------------------------------------------------


def roll_up_pending(app: App, *, batch: int = 5000, max_batches: int | None = None) -> int:
    """Add finished runs that are not in the hourly rollup yet (ended by a reaper, written
    before the rollup existed) to it, ``batch`` at a time; returns how many. ``cairn
    serve`` does a few batches a tick, so a migrated ledger catches up by itself."""
    total = 0
    done = 0
    while max_batches is None or done < max_batches:
        with app.store.begin() as conn:
            added = usage_store.roll_up_runs(conn, limit=batch)
        total += added
        done += 1
        if added < batch:
            break
    return total


def rebuild_rollup(app: App, *, batch: int = 20000) -> int:
    """Rebuild the hourly usage rollup from the runs (``cairn usage rollup --rebuild``);
    returns how many runs it holds. Usage stays exact throughout: runs not rolled up yet
    are read raw."""
    with app.store.begin() as conn:
        usage_store.rebuild_rollup(conn)
    return roll_up_pending(app, batch=batch)
