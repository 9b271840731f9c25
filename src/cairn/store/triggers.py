"""Trigger rows, and the atomic fire claim that enforces a trigger's hourly cap."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, delete, insert, or_, select, update

from cairn.domain.triggers import Trigger
from cairn.errors import NotFound
from cairn.store.rows import record_values, row_record
from cairn.store.schema import agents, triggers

WINDOW = timedelta(hours=1)


def _to_trigger(row: Row[Any]) -> Trigger:
    return row_record(Trigger, row, agent_slug=row.slug)


def _select() -> Any:
    return select(triggers, agents.c.slug).join(agents, agents.c.agent_id == triggers.c.agent_id)


def create_trigger(conn: Connection, trigger: Trigger) -> None:
    """Insert a trigger."""
    # A new trigger has not fired yet, whatever the object says.
    values = record_values(triggers, trigger, fire_count=0, last_fired_at=None, window_fires=0)
    conn.execute(insert(triggers).values(values))


def get_trigger(conn: Connection, sandbox_id: str, trigger_id: str) -> Trigger:
    """One trigger of the sandbox, or ``NotFound``."""
    row = conn.execute(
        _select().where(triggers.c.sandbox_id == sandbox_id, triggers.c.trigger_id == trigger_id)
    ).first()
    if row is None:
        raise NotFound(f"no trigger {trigger_id!r} in sandbox {sandbox_id!r}")
    return _to_trigger(row)


def list_triggers(
    conn: Connection,
    sandbox_id: str,
    *,
    agent_id: str | None = None,
    source_id: str | None = None,
) -> list[Trigger]:
    """Triggers of an agent or a source, oldest first."""
    query = _select().where(triggers.c.sandbox_id == sandbox_id)
    if agent_id is not None:
        query = query.where(triggers.c.agent_id == agent_id)
    if source_id is not None:
        query = query.where(triggers.c.data_source_id == source_id)
    return [_to_trigger(row) for row in conn.execute(query.order_by(triggers.c.trigger_id))]


def update_trigger(conn: Connection, sandbox_id: str, trigger_id: str, **values: Any) -> None:
    """Change the named columns."""
    conn.execute(
        update(triggers)
        .where(triggers.c.sandbox_id == sandbox_id, triggers.c.trigger_id == trigger_id)
        .values(updated_at=datetime.now(UTC), **values)
    )


def delete_trigger(conn: Connection, sandbox_id: str, trigger_id: str) -> None:
    """Destroy a trigger (its past decisions stay, pointing at its id)."""
    conn.execute(
        delete(triggers).where(
            triggers.c.sandbox_id == sandbox_id, triggers.c.trigger_id == trigger_id
        )
    )


def claim_fire(conn: Connection, trigger_id: str, now: datetime) -> bool:
    """Count one fire against the trigger's hourly window, if the cap allows it.

    One conditional UPDATE on the trigger's own row decides it: concurrent claims serialise
    on that row (PostgreSQL re-checks the condition on the row it waited for; SQLite has one
    writer), so a cap of 10 lets exactly 10 through, however many arrive at once."""
    result = conn.execute(
        _claim_statement(), {"claimed_id": trigger_id, "now": now, "window_start": now - WINDOW}
    )
    return bool(result.rowcount)


@functools.cache
def _claim_statement() -> Any:
    """``claim_fire``'s UPDATE, built once (it runs for every fired event)."""
    moment = triggers.c.window_started_at.type
    now = bindparam("now", type_=moment)
    window_over = or_(
        triggers.c.window_started_at.is_(None),
        triggers.c.window_started_at <= bindparam("window_start", type_=moment),
    )
    return (
        update(triggers)
        .where(
            triggers.c.trigger_id == bindparam("claimed_id"),
            or_(
                triggers.c.rate_limit_per_hour.is_(None),
                window_over,
                triggers.c.window_fires < triggers.c.rate_limit_per_hour,
            ),
        )
        .values(
            window_fires=case((window_over, 1), else_=triggers.c.window_fires + 1),
            window_started_at=case((window_over, now), else_=triggers.c.window_started_at),
            fire_count=triggers.c.fire_count + 1,
            last_fired_at=now,
        )
    )


def window_of(conn: Connection, trigger_id: str) -> dict[str, Any]:
    """The trigger's current window, for a ``rate_limited`` decision's detail."""
    row = conn.execute(
        select(
            triggers.c.rate_limit_per_hour, triggers.c.window_started_at, triggers.c.window_fires
        ).where(triggers.c.trigger_id == trigger_id)
    ).one()
    return {
        "rate_limit_per_hour": row.rate_limit_per_hour,
        "window_started_at": row.window_started_at.isoformat() if row.window_started_at else None,
        "fires_in_window": row.window_fires,
    }


__all__ = [
    "claim_fire",
    "create_trigger",
    "delete_trigger",
    "get_trigger",
    "list_triggers",
    "update_trigger",
    "window_of",
]
