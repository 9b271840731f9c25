"""Schedule sources: ticks at cron times, and one catch-up tick (never a burst) after downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cairn.domain.agents import ModelSettings
from cairn.errors import UsageError
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs
from cairn.services.schedules import add_schedule_source, tick_due
from cairn.services.triggers import create_trigger
from cairn.store import events as event_store
from cairn.store import sources as source_store


async def scheduled_agent(app: App, cron: str, timezone: str = "UTC") -> tuple[str, str]:
    await create_agent(
        app,
        "default",
        AgentSpec(
            slug="nightly",
            system_prompt="Report.",
            tool_sources=[],
            model_settings=ModelSettings(script=["Tick for {{event.scheduled_for}}"]),
        ),
    )
    source = add_schedule_source(app, "default", "every-minute", cron, timezone)
    trigger = create_trigger(
        app, "default", "nightly", source.source_id, event_type_filter="schedule.tick"
    )
    return source.source_id, trigger.trigger_id


def set_last_tick(app: App, source_id: str, when: datetime) -> None:
    with app.store.begin() as conn:
        source = source_store.get_source(conn, "default", source_id)
        config = dict(source.config, last_tick_at=when.isoformat())
        source_store.set_source_config(conn, "default", source_id, config)


@pytest.mark.anyio
async def test_a_due_tick_fires_the_bound_trigger_once(app: App) -> None:
    source_id, trigger_id = await scheduled_agent(app, "*/5 * * * *")
    now = datetime(2026, 11, 29, 10, 7, tzinfo=UTC)
    set_last_tick(app, source_id, datetime(2026, 11, 29, 10, 3, tzinfo=UTC))
    (event_id,) = await tick_due(app, now)
    assert await tick_due(app, now) == []  # nothing more is due at the same moment
    with app.store.connect() as conn:
        event = event_store.get_event(conn, "default", event_id)
    assert event.event_type == "schedule.tick"
    assert event.payload == {
        "scheduled_for": "2026-11-29T10:05:00+00:00",
        "timezone": "UTC",
        "missed": 0,
    }
    assert event.decisions is not None and event.decisions[0].decision == "fired"
    (run,) = list_runs(app, "default", RunQuery(agent_slug="nightly", trigger_id=trigger_id))
    assert run.output_text == "Tick for 2026-11-29T10:05:00+00:00"


@pytest.mark.anyio
async def test_ticks_missed_while_down_become_one_catch_up_tick(app: App) -> None:
    source_id, trigger_id = await scheduled_agent(app, "* * * * *")
    now = datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC)
    set_last_tick(app, source_id, now - timedelta(hours=3))
    emitted = await tick_due(app, now)
    assert len(emitted) == 1
    with app.store.connect() as conn:
        event = event_store.get_event(conn, "default", emitted[0])
    assert event.payload["scheduled_for"] == "2026-11-29T12:00:00+00:00"
    assert event.payload["missed"] == 179  # 180 minute ticks, one delivered
    runs = list_runs(app, "default", RunQuery(agent_slug="nightly", trigger_id=trigger_id))
    assert len(runs) == 1


@pytest.mark.anyio
async def test_cron_times_follow_the_schedules_time_zone(app: App) -> None:
    source_id, _ = await scheduled_agent(app, "0 9 * * *", "Europe/Paris")
    set_last_tick(app, source_id, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))
    assert await tick_due(app, datetime(2026, 11, 29, 7, 59, tzinfo=UTC)) == []
    (event_id,) = await tick_due(app, datetime(2026, 11, 29, 8, 0, 1, tzinfo=UTC))
    with app.store.connect() as conn:
        payload = event_store.get_event(conn, "default", event_id).payload
    assert payload["scheduled_for"] == "2026-11-29T09:00:00+01:00"


def test_a_bad_cron_or_time_zone_is_a_clear_error(app: App) -> None:
    with pytest.raises(UsageError, match="invalid cron expression"):
        add_schedule_source(app, "default", "x", "every day", "UTC")
    with pytest.raises(UsageError, match="unknown time zone"):
        add_schedule_source(app, "default", "x", "0 2 * * *", "Mars/Olympus")
