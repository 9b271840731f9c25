"""Trigger operations: bind an agent to a source's events, pause, resume, destroy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from cairn.domain.triggers import Trigger, TriggerStatus
from cairn.errors import UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import agents as agent_store
from cairn.store import sources as source_store
from cairn.store import triggers as trigger_store

EVENT_SOURCE_KINDS = ("webhook", "schedule", "integration")


def _check(event_type_filter: str, filter_config: Any, rate_limit: int | None) -> None:
    if not event_type_filter.strip():
        raise UsageError("event type filter is empty: use '*' or one event type")
    if filter_config is not None and not isinstance(filter_config, dict):
        raise UsageError(
            'the filter must be a JSON object of payload path → value, e.g. {"channel": "C123"}'
        )
    if rate_limit is not None and rate_limit < 1:
        raise UsageError(f"rate limit {rate_limit} must be at least 1 fire per hour")


def create_trigger(
    app: App,
    sandbox_id: str,
    slug: str,
    source_ref: str,
    *,
    event_type_filter: str = "*",
    filter_config: dict[str, Any] | None = None,
    rate_limit_per_hour: int | None = None,
) -> Trigger:
    """A new active trigger firing agent ``slug`` on events of ``source_ref`` (id or label)."""
    _check(event_type_filter, filter_config, rate_limit_per_hour)
    now = datetime.now(UTC)
    with app.store.begin() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        source = source_store.get_source(conn, sandbox_id, source_ref)
        if source.kind not in EVENT_SOURCE_KINDS:
            raise UsageError(
                f"source {source.label!r} is a {source.kind} source, which emits no events; "
                f"triggers bind to {', '.join(EVENT_SOURCE_KINDS)} sources"
            )
        trigger = Trigger(
            trigger_id=new_id("trg"),
            sandbox_id=sandbox_id,
            agent_id=agent.agent_id,
            data_source_id=source.source_id,
            event_type_filter=event_type_filter,
            filter_config=filter_config,
            rate_limit_per_hour=rate_limit_per_hour,
            created_at=now,
            updated_at=now,
        )
        trigger_store.create_trigger(conn, trigger)
        return trigger_store.get_trigger(conn, sandbox_id, trigger.trigger_id)


def list_triggers(app: App, sandbox_id: str, slug: str | None = None) -> list[Trigger]:
    """The agent's triggers (or every trigger of the sandbox)."""
    with app.store.connect() as conn:
        agent_id = agent_store.get_agent(conn, sandbox_id, slug).agent_id if slug else None
        return trigger_store.list_triggers(conn, sandbox_id, agent_id=agent_id)


def get_trigger(app: App, sandbox_id: str, trigger_id: str) -> Trigger:
    """One trigger."""
    with app.store.connect() as conn:
        return trigger_store.get_trigger(conn, sandbox_id, trigger_id)


UNSET: Any = object()


def update_trigger(
    app: App,
    sandbox_id: str,
    trigger_id: str,
    *,
    event_type_filter: str | None = None,
    filter_config: Any = UNSET,
    rate_limit_per_hour: Any = UNSET,
    status: str | None = None,
) -> Trigger:
    """Change only the given fields (``None`` for the filter or the cap removes it)."""
    values: dict[str, Any] = {}
    if event_type_filter is not None:
        values["event_type_filter"] = event_type_filter
    if filter_config is not UNSET:
        values["filter_config"] = filter_config
    if rate_limit_per_hour is not UNSET:
        values["rate_limit_per_hour"] = rate_limit_per_hour
    if status is not None:
        if status not in get_args(TriggerStatus):
            raise UsageError(f"trigger status {status!r} must be 'active' or 'paused'")
        values["status"] = status
    _check(
        values.get("event_type_filter", "*"),
        values.get("filter_config"),
        values.get("rate_limit_per_hour"),
    )
    with app.store.begin() as conn:
        trigger_store.get_trigger(conn, sandbox_id, trigger_id)
        if values:
            trigger_store.update_trigger(conn, sandbox_id, trigger_id, **values)
        return trigger_store.get_trigger(conn, sandbox_id, trigger_id)


def destroy_trigger(app: App, sandbox_id: str, trigger_id: str) -> Trigger:
    """Delete a trigger for good (its recorded decisions stay)."""
    with app.store.begin() as conn:
        trigger = trigger_store.get_trigger(conn, sandbox_id, trigger_id)
        trigger_store.delete_trigger(conn, sandbox_id, trigger_id)
    return trigger
