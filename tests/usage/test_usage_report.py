"""Usage reports add up exactly: runs fired through the scripted backend (whose token counts
are fixed by the script) plus rows recorded hours or days ago, in and out of the window."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cairn.errors import NotFound, UsageError
from cairn.services.access import create_sandbox
from cairn.services.app import App
from cairn.services.usage import usage
from tests.usage.helpers import MICROS_IN, MICROS_OUT, deliver, fire, hook, insert_run, make_agent

HOUR = 3600.0
DAY = 86400.0


def index(at: float, since: float) -> int:
    """The series point of a run made at ``at``: points are clock hours from ``since``'s."""
    return int(at // HOUR) - int(since // HOUR)


def cost(tokens_in: int, tokens_out: int, runs: int = 1) -> int:
    return runs * (tokens_in * MICROS_IN + tokens_out * MICROS_OUT)


@pytest.mark.anyio
async def test_usage_by_agent_sums_fired_and_recorded_runs_exactly(app: App) -> None:
    support = await make_agent(app, "support", tokens_in=100, tokens_out=20)
    triage = await make_agent(app, "triage", tokens_in=40, tokens_out=10)
    await fire(app, "support", 3)
    await fire(app, "triage", 2)
    now = time.time()
    # An unpriced run of support 3.5 hours ago, a triage run two days ago (outside the
    # window), and a run of another sandbox's agent (never counted here).
    insert_run(app, support, now - 3.5 * HOUR, tokens_in=1000, tokens_out=200, cost_micros=None)
    insert_run(app, triage, now - 2 * DAY, tokens_in=5000, tokens_out=500, cost_micros=99)
    create_sandbox(app, "other")
    stranger = await make_agent(app, "support", tokens_in=1, tokens_out=1, sandbox="other")
    insert_run(app, stranger, now - HOUR, tokens_in=7777, tokens_out=7, cost_micros=5)

    report = usage(app, "default", since_s=DAY)
    since = report.since.timestamp()

    assert [row.key for row in report.rows] == ["support", "triage"]
    first, second = report.rows
    assert (first.runs, first.tokens_in, first.tokens_out) == (4, 300 + 1000, 60 + 200)
    assert (first.cost_micros, first.unpriced_runs) == (cost(100, 20, 3), 1)
    assert (second.runs, second.tokens_in, second.tokens_out) == (2, 80, 20)
    assert (second.cost_micros, second.unpriced_runs) == (cost(40, 10, 2), 0)
    totals = report.totals
    assert (totals.runs, totals.tokens_in, totals.tokens_out) == (6, 1380, 280)
    assert (totals.cost_micros, totals.unpriced_runs) == (cost(100, 20, 3) + cost(40, 10, 2), 1)
    # 25 clock hours, oldest first (a day ending now touches 25; the first and last are
    # partial): the recorded run 3.5 h ago in its hour, the fires now in the last one.
    assert len(first.series) == len(totals.series) == 25
    assert first.series[index(now - 3.5 * HOUR, since)] == 1200 and first.series[24] == 360
    assert sum(first.series) == first.tokens and sum(totals.series) == totals.tokens
    assert second.series == [0] * 24 + [100]
    assert report.to_dict()["rows"][0]["tokens"] == 1560


@pytest.mark.anyio
async def test_a_group_whose_runs_all_lack_a_price_has_no_cost_not_zero(app: App) -> None:
    agent = await make_agent(app, "ghost", tokens_in=1, tokens_out=1)
    now = time.time()
    for hours_ago in (1.5, 2.5):
        insert_run(app, agent, now - hours_ago * HOUR, tokens_in=10, tokens_out=5, cost_micros=None)

    row = usage(app, "default", since_s=DAY).rows[0]

    assert (row.key, row.runs, row.cost_micros, row.unpriced_runs) == ("ghost", 2, None, 2)


@pytest.mark.anyio
async def test_usage_by_trigger_model_and_hour(app: App) -> None:
    support = await make_agent(app, "support", tokens_in=100, tokens_out=20)
    bound = hook(app, "support", "github")
    await deliver(app, bound.source, 2)
    await fire(app, "support", 1)
    now = time.time()
    insert_run(app, support, now - 5.5 * HOUR, tokens_in=1000, tokens_out=200, cost_micros=None)

    by_trigger = usage(app, "default", by="trigger")
    by_model = usage(app, "default", by="model")
    by_hour = usage(app, "default", by="hour")

    assert [(r.key, r.runs, r.tokens) for r in by_trigger.rows] == [
        (None, 2, 1320),  # the test fire and the recorded manual run: no trigger
        (bound.trigger.trigger_id, 2, 240),
    ]
    assert [(r.key, r.runs, r.cost_micros, r.unpriced_runs) for r in by_model.rows] == [
        ("openai:ft-support-v3", 1, None, 1),
        ("scripted:priced-1", 3, cost(100, 20, 3), 0),
    ]
    since = by_hour.since.timestamp()
    assert len(by_hour.rows) == 25
    assert by_hour.rows[0].key == datetime.fromtimestamp(since // HOUR * HOUR, UTC).isoformat()
    assert all(len(row.series) == 1 and row.series[0] == row.tokens for row in by_hour.rows)
    busy = {at: (row.runs, row.tokens) for at, row in enumerate(by_hour.rows) if row.runs}
    recorded = index(now - 5.5 * HOUR, since)
    assert busy == {recorded: (1, 1200), 24: (3, 360)}
    assert by_hour.totals.series[recorded] == 1200 and by_hour.totals.runs == 4
    for report in (by_trigger, by_model, by_hour):
        assert (report.totals.runs, report.totals.tokens) == (4, 1560)


@pytest.mark.anyio
async def test_usage_filters_by_agent_and_by_trigger(app: App) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await make_agent(app, "triage", tokens_in=40, tokens_out=10)
    github = hook(app, "support", "github")
    slack = hook(app, "support", "slack")
    await deliver(app, github.source, 2)
    await deliver(app, slack.source, 1)
    await fire(app, "triage", 2)

    only_support = usage(app, "default", agent="support")
    only_github = usage(app, "default", trigger_id=github.trigger.trigger_id, by="trigger")
    both = usage(app, "default", agent="triage", trigger_id=github.trigger.trigger_id)

    assert [(r.key, r.runs) for r in only_support.rows] == [("support", 3)]
    assert only_support.agent == "support"
    assert [(r.key, r.runs) for r in only_github.rows] == [(github.trigger.trigger_id, 2)]
    assert both.rows == [] and both.totals.runs == 0 and both.totals.cost_micros is None
    with pytest.raises(NotFound, match="nobody"):
        usage(app, "default", agent="nobody")


@pytest.mark.anyio
async def test_the_window_is_half_open_and_bucketed_by_clock_hour(app: App) -> None:
    agent = await make_agent(app, "edges", tokens_in=1, tokens_out=1)
    until = (time.time() // HOUR - 1) * HOUR + 1234.5  # 20 min 34.5 s into an hour
    since = until - DAY
    for at, tokens in (
        (since - 0.002, 1),  # just before the window
        (since, 10),  # its first instant: hour 0
        (until - 0.002, 100),  # its last millisecond: hour 23
        (until, 1000),  # the end is excluded
    ):
        insert_run(app, agent, at, tokens_in=tokens, tokens_out=0, cost_micros=tokens)

    report = usage(app, "default", since_s=DAY, until=until)

    row = report.rows[0]
    assert (row.runs, row.tokens_in, row.cost_micros) == (2, 110, 110)
    # 25 points: since's clock hour (from 00:20:34.5 on) to until's (up to 00:20:34.5).
    assert len(row.series) == 25
    assert row.series[0] == 10 and row.series[24] == 100 and sum(row.series) == 110
    assert report.since.timestamp() == since and report.until.timestamp() == until


@pytest.mark.anyio
async def test_a_short_window_has_one_point_per_clock_hour_it_touches(app: App) -> None:
    await make_agent(app, "brief", tokens_in=3, tokens_out=4)
    await fire(app, "brief", 1)

    report = usage(app, "default", since_s=90 * 60)

    touched = index(report.until.timestamp(), report.since.timestamp()) + 1
    assert touched in (2, 3)
    assert report.rows[0].series == [0] * (touched - 1) + [7]


def test_bad_groupings_and_windows_are_refused_with_the_accepted_forms(app: App) -> None:
    with pytest.raises(UsageError, match="cannot group usage by 'day': use one of agent, trig"):
        usage(app, "default", by="day")
    with pytest.raises(UsageError, match="longer than 0"):
        usage(app, "default", since_s=0)
    with pytest.raises(UsageError, match="366 days"):
        usage(app, "default", since_s=400 * DAY)
