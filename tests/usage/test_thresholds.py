"""Thresholds flag a runaway agent from its last hour of runs; enforcing one pauses the
agent's active triggers and records why, where a paused trigger can find it."""

from __future__ import annotations

import time

import pytest

from cairn.errors import NotFound, UsageError
from cairn.services.app import App
from cairn.services.ingest import ingest
from cairn.services.triggers import get_trigger, update_trigger
from cairn.services.usage import (
    clear_threshold,
    enforce_thresholds,
    get_threshold,
    list_enforcements,
    list_thresholds,
    pause_reason,
    runaway_agents,
    set_threshold,
)
from tests.usage.helpers import MICROS_IN, MICROS_OUT, deliver, fire, hook, insert_run, make_agent

HOUR = 3600.0


@pytest.mark.anyio
async def test_a_threshold_is_set_replaced_shown_and_cleared(app: App) -> None:
    await make_agent(app, "support", tokens_in=1, tokens_out=1)

    first = set_threshold(app, "default", "support", tokens_per_hour=5000)
    second = set_threshold(
        app, "default", "support", cost_micros_per_hour=1_500_000, pause_triggers=True
    )

    assert (first.tokens_per_hour, first.cost_micros_per_hour, first.pause_triggers) == (
        5000,
        None,
        False,
    )
    assert (second.tokens_per_hour, second.cost_micros_per_hour, second.pause_triggers) == (
        None,
        1_500_000,
        True,
    )
    assert get_threshold(app, "default", "support") == second
    assert [t.agent_slug for t in list_thresholds(app, "default")] == ["support"]
    assert clear_threshold(app, "default", "support") is True
    assert clear_threshold(app, "default", "support") is False
    assert get_threshold(app, "default", "support") is None


@pytest.mark.anyio
async def test_a_threshold_needs_a_positive_limit_and_a_known_agent(app: App) -> None:
    await make_agent(app, "support", tokens_in=1, tokens_out=1)

    with pytest.raises(UsageError, match="needs tokens per hour and/or a cost per hour"):
        set_threshold(app, "default", "support")
    with pytest.raises(UsageError, match="must be a whole number from 1 to"):
        set_threshold(app, "default", "support", tokens_per_hour=0)
    with pytest.raises(UsageError, match="must be a whole number from 1 to"):
        set_threshold(app, "default", "support", cost_micros_per_hour=10**30)
    with pytest.raises(NotFound, match="nobody"):
        set_threshold(app, "default", "nobody", tokens_per_hour=10)


@pytest.mark.anyio
async def test_an_agent_over_its_tokens_or_cost_in_the_last_hour_is_flagged(app: App) -> None:
    support = await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await make_agent(app, "triage", tokens_in=40, tokens_out=10)
    await make_agent(app, "quiet", tokens_in=1, tokens_out=1)
    await fire(app, "support", 3)  # 360 tokens, 1,200 micro-units this hour
    await fire(app, "triage", 2)  # 100 tokens
    # Two hours ago support burned far more: not the last hour, so not counted.
    insert_run(app, support, time.time() - 2 * HOUR, tokens_in=10**6, tokens_out=0, cost_micros=1)
    set_threshold(app, "default", "support", tokens_per_hour=300, cost_micros_per_hour=1100)
    set_threshold(app, "default", "triage", tokens_per_hour=100)  # at it, not over
    set_threshold(app, "default", "quiet", tokens_per_hour=1)  # no run this hour

    flags = runaway_agents(app, "default")

    spent = 3 * (100 * MICROS_IN + 20 * MICROS_OUT)
    assert [(f.slug, f.metric, f.value, f.threshold) for f in flags] == [
        ("support", "tokens_per_hour", 360, 300),
        ("support", "cost_micros_per_hour", spent, 1100),  # less over: second
    ]
    assert flags[0].pause_triggers is False and flags[0].paused_trigger_ids == ()
    assert "agent support used 360 tokens in the hour from" in flags[0].message
    assert "over its threshold of 300 tokens per hour" in flags[0].message
    assert "an estimated 0.0012 in cost" in flags[1].message
    assert time.time() - HOUR - 5 < flags[0].window_start.timestamp() <= time.time() - HOUR


@pytest.mark.anyio
async def test_enforcing_pauses_the_runaway_agents_triggers_and_records_why(app: App) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await make_agent(app, "digest", tokens_in=100, tokens_out=20)
    github = hook(app, "support", "github")
    slack = hook(app, "support", "slack")
    held = hook(app, "support", "linear")
    update_trigger(app, "default", held.trigger.trigger_id, status="paused")  # by a person
    watched = hook(app, "digest", "cron-ish")
    await deliver(app, github.source, 3)  # 360 tokens this hour
    await fire(app, "digest", 3)
    set_threshold(app, "default", "support", tokens_per_hour=300, pause_triggers=True)
    set_threshold(app, "default", "digest", tokens_per_hour=300)  # flag only

    enforced = enforce_thresholds(app, "default")

    paused = (github.trigger.trigger_id, slack.trigger.trigger_id)
    assert [(f.slug, f.metric, f.paused_trigger_ids) for f in enforced] == [
        ("support", "tokens_per_hour", paused)
    ]
    for trigger_id in paused:
        assert get_trigger(app, "default", trigger_id).status == "paused"
    assert get_trigger(app, "default", watched.trigger.trigger_id).status == "active"
    [record] = list_enforcements(app, "default")
    assert (record.agent_slug, record.metric, record.value, record.threshold) == (
        "support",
        "tokens_per_hour",
        360,
        300,
    )
    assert record.trigger_ids == paused
    assert "agent support used 360 tokens" in record.reason
    assert f"cairn agent trigger resume {github.trigger.trigger_id}" in record.reason
    assert pause_reason(app, "default", github.trigger.trigger_id) == record
    assert pause_reason(app, "default", held.trigger.trigger_id) is None  # paused by hand
    assert list_enforcements(app, "default", "digest") == []
    # The paused trigger now records ``paused`` for new events instead of firing.
    result = await ingest(app, github.source, "issue.opened", {"n": 99})
    assert [d.decision for d in result.decisions or []] == ["paused"]

    again = enforce_thresholds(app, "default")

    assert [(f.slug, f.paused_trigger_ids) for f in again] == [("support", ())]
    assert len(list_enforcements(app, "default")) == 1


@pytest.mark.anyio
async def test_a_trigger_resumed_then_paused_by_hand_no_longer_blames_the_threshold(
    app: App,
) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    github = hook(app, "support", "github")
    await deliver(app, github.source, 3)
    set_threshold(app, "default", "support", tokens_per_hour=300, pause_triggers=True)
    enforce_thresholds(app, "default")
    trigger_id = github.trigger.trigger_id

    update_trigger(app, "default", trigger_id, status="active")
    assert pause_reason(app, "default", trigger_id) is None
    update_trigger(app, "default", trigger_id, status="paused")

    assert pause_reason(app, "default", trigger_id) is None
    assert len(list_enforcements(app, "default", "support")) == 1


def test_no_threshold_means_no_runaway(app: App) -> None:
    assert runaway_agents(app, "default") == []
    assert enforce_thresholds(app, "default") == []
