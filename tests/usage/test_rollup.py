"""The hourly usage rollup answers exactly what the raw aggregate over the runs answers,
cell for cell, whatever mix of rolled-up, pending, live and pruned runs the ledger holds."""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import false, func, select, update

from cairn.domain.runs import FINAL_STATUSES, Run
from cairn.domain.usage import USAGE_BY, UsageCell, UsageFilter
from cairn.services.app import App
from cairn.services.runs import prune_runs
from cairn.services.usage import rebuild_rollup, roll_up_pending, usage
from cairn.store import runs as run_store
from cairn.store import usage as usage_store
from cairn.store.schema import runs, usage_hourly
from tests.usage.helpers import fire, hook, insert_run, make_agent

HOUR = 3600.0
DAY = 86400.0


def pending_rollup(app: App) -> int:
    """Finished runs not in the hourly rollup yet."""
    query = select(func.count()).where(runs.c.usage_rolled == false())
    with app.store.connect() as conn:
        return int(conn.execute(query.where(runs.c.status.in_(FINAL_STATUSES))).scalar_one())


def cells(app: App, where: UsageFilter, *, use_rollup: bool) -> list[UsageCell]:
    with app.store.connect() as conn:
        found = usage_store.aggregate_usage(conn, where, use_rollup=use_rollup)
    return sorted(found, key=lambda c: (c.key or "", c.bucket))


def windows(now: float) -> list[tuple[float, float, bool]]:
    """(since, until, up_to_now): unaligned, aligned, short, inside one hour, up to now."""
    aligned = now // HOUR * HOUR
    return [
        (now - DAY, now, True),
        (now - 3 * DAY - 17.25, now - 0.5 * HOUR, False),
        (aligned - 2 * DAY, aligned, False),
        (aligned - 5 * HOUR + 0.001, aligned - HOUR - 0.001, False),
        (aligned - 3 * HOUR + 60, aligned - 3 * HOUR + 600, False),
        (now - 4 * DAY, now, True),
    ]


def assert_identical(app: App, agent_id: str, trigger_id: str) -> int:
    """Compare every window, grouping and filter; returns how many cells were compared."""
    compared = 0
    now = time.time()
    for since, until, up_to_now in windows(now):
        for by in USAGE_BY:
            for filters in ({}, {"agent_id": agent_id}, {"trigger_id": trigger_id}):
                where = UsageFilter(
                    sandbox_id="default",
                    since=since,
                    until=until,
                    by=by,
                    up_to_now=up_to_now,
                    **filters,  # type: ignore[arg-type]
                )
                rolled = cells(app, where, use_rollup=True)
                raw = cells(app, where, use_rollup=False)
                assert rolled == raw, (by, filters, since, until)
                compared += len(raw)
    return compared


@pytest.mark.anyio
async def test_the_rollup_answers_exactly_what_the_raw_runs_answer(app: App) -> None:
    support = await make_agent(app, "support", tokens_in=100, tokens_out=20)
    triage = await make_agent(app, "triage", tokens_in=40, tokens_out=10)
    bound = hook(app, "support", "github")
    await fire(app, "support", 2)  # finished through the runner: rolled up at once
    rng = random.Random(7)
    now = time.time()
    aligned = now // HOUR * HOUR
    stamps = [now - rng.uniform(0, 4 * DAY) for _ in range(300)]
    # Runs on the hour's edges, where a bucketing slip would show.
    stamps += [aligned - k * HOUR + d for k in (1, 2, 30) for d in (-0.001, 0.0, 0.0005)]
    recorded: list[Run] = []
    for at in stamps:
        agent = rng.choice([support, triage])
        recorded.append(
            insert_run(
                app,
                agent,
                at,
                tokens_in=rng.randint(1, 5000),
                tokens_out=rng.randint(1, 900),
                cost_micros=rng.choice([None, rng.randint(0, 10_000)]),
                model=rng.choice([None, "openai:ft-support-v3", "scripted:priced-1"]),
                trigger_id=bound.trigger.trigger_id
                if agent is support and rng.random() < 0.5
                else None,
            )
        )
    # Half of the recorded runs rolled up, half still pending; one run still live.
    with app.store.begin() as conn:
        usage_store.roll_up_runs(conn, [r.run_id for r in recorded[::2]])
    live = insert_run(app, triage, now - 2 * HOUR, tokens_in=9, tokens_out=9, cost_micros=1)
    with app.store.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == live.run_id).values(status="running"))

    assert pending_rollup(app) == len(recorded) - len(recorded[::2])
    assert assert_identical(app, support.agent_id, bound.trigger.trigger_id) > 1000

    assert roll_up_pending(app, batch=50) == len(recorded) - len(recorded[::2])
    assert pending_rollup(app) == 0
    with app.store.connect() as conn:
        assert conn.execute(usage_hourly.select()).first() is not None  # really used
    assert_identical(app, support.agent_id, bound.trigger.trigger_id)

    # Pruning takes runs out of the rollup with the ledger; a rebuild changes nothing.
    pruned = prune_runs(app, "default", 2 * DAY).runs
    assert pruned > 0
    assert_identical(app, support.agent_id, bound.trigger.trigger_id)
    assert rebuild_rollup(app) == 2 + len(recorded) - pruned
    assert_identical(app, support.agent_id, bound.trigger.trigger_id)


@pytest.mark.anyio
async def test_a_run_finished_by_the_runner_is_in_the_rollup_and_the_report(app: App) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await fire(app, "support", 3)

    with app.store.connect() as conn:
        rows = conn.execute(usage_hourly.select()).all()
    report = usage(app, "default", since_s=3 * DAY)

    assert pending_rollup(app) == 0
    assert [(r.agent_slug, r.runs, r.tokens_in, r.tokens_out) for r in rows] == [
        ("support", 3, 300, 60)
    ]
    assert [(r.key, r.runs, r.tokens) for r in report.rows] == [("support", 3, 360)]


@pytest.mark.anyio
async def test_final_writes_roll_each_run_up_once_exactly_as_the_raw_runs_say(app: App) -> None:
    """The final write adds its run to the rollup itself (one upsert per table): on the
    hour's edges, without a price, model or trigger, and when a late final write follows a
    reaper's end that the catch-up pass had already rolled up (counted once, as rewritten)."""
    support = await make_agent(app, "support", tokens_in=100, tokens_out=20)
    bound = hook(app, "support", "github")
    now = time.time()
    aligned = now // HOUR * HOUR
    stamps = [aligned - k * HOUR + d for k in (1, 2) for d in (-0.001, 0.0, 0.0005)]
    written: list[Run] = []
    for n, at in enumerate(stamps):
        run = insert_run(
            app,
            support,
            at,
            tokens_in=10 + n,
            tokens_out=n,
            cost_micros=None if n % 2 else 7 * n,
            model=None if n % 3 == 0 else "scripted:priced-1",
            trigger_id=bound.trigger.trigger_id if n % 2 else None,
        )
        with app.store.begin() as conn:  # back to live, as a worker holds it
            conn.execute(update(runs).where(runs.c.run_id == run.run_id).values(status="running"))
        written.append(run)
    late = written[0]
    with app.store.begin() as conn:  # a reaper ended it and the catch-up pass rolled it up
        conn.execute(update(runs).where(runs.c.run_id == late.run_id).values(status="failed"))
        assert usage_store.roll_up_runs(conn, [late.run_id]) == 1
    late.usage.tokens_in = 5000

    for run in written:
        with app.store.begin() as conn:
            run_store.finish_run(conn, run, [])

    assert pending_rollup(app) == 0
    assert assert_identical(app, support.agent_id, bound.trigger.trigger_id) > 0
    with app.store.connect() as conn:
        rolled = conn.execute(usage_hourly.select()).all()
    assert sum(r.runs for r in rolled) == len(written)
    assert sum(r.tokens_in for r in rolled) == sum(r.usage.tokens_in for r in written)
