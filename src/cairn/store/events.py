"""Event rows and trigger decisions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from cairn.domain.deliveries import delivery_from_dict
from cairn.domain.triggers import Event, TriggerDecision
from cairn.errors import NotFound
from cairn.store.rows import record_values, row_record
from cairn.store.schema import events, trigger_decisions


def _to_event(row: Row[Any]) -> Event:
    return row_record(Event, row, decisions=None, delivery=delivery_from_dict(row.delivery))


def insert_event(conn: Connection, event: Event) -> str | None:
    """Store an event; returns ``None`` when stored, or the id of the event already stored
    with the same sender event id on this source (a retry: not fired again)."""
    # One statement on the hot path: ON CONFLICT DO NOTHING (SQLite and PostgreSQL) rather
    # than a savepoint around a failing insert; the statement is built once per dialect
    # and the values passed apart, which spares SQLAlchemy rebuilding it per event.
    inserted = conn.execute(_insert_ignoring_duplicates(conn.dialect.name), _event_values(event))
    if inserted.first() is not None:
        return None
    return _existing(conn, event)


def insert_events(conn: Connection, batch: Sequence[Event]) -> list[str | None]:
    """Store several events with one statement (a group commit); for each, in order, what
    ``insert_event`` returns: ``None`` when stored, or the id of the event already stored
    with its sender event id (a retry, also when repeated within ``batch``)."""
    if len(batch) == 1:
        return [insert_event(conn, batch[0])]
    if not batch:
        return []
    # Executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues");
    # the ids returned are the rows inserted, a conflict returns nothing.
    stored = set(
        conn.execute(
            _insert_ignoring_duplicates(conn.dialect.name), [_event_values(e) for e in batch]
        ).scalars()
    )
    return [None if e.event_id in stored else _existing(conn, e) for e in batch]


def _event_values(event: Event) -> dict[str, Any]:
    delivery = event.delivery.to_dict() if event.delivery else None
    return record_values(events, event, delivery=delivery)


def _existing(conn: Connection, event: Event) -> str:
    """The id of the event stored with ``event``'s sender event id (it was not inserted)."""
    existing = conn.execute(
        select(events.c.event_id).where(
            events.c.source_id == event.source_id,
            events.c.sender_event_id == event.sender_event_id,
        )
    ).scalar_one_or_none()
    if existing is None or event.sender_event_id is None:  # not a repeated sender id
        raise IntegrityError("insert into events", None, ValueError("event not stored"))
    return str(existing)


@functools.cache
def _insert_ignoring_duplicates(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    upserts: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    upsert = upserts.get(dialect)
    if upsert is None:
        return insert(events).returning(events.c.event_id)
    return upsert(events).on_conflict_do_nothing().returning(events.c.event_id)


def record_decisions(conn: Connection, batch: Sequence[TriggerDecision]) -> None:
    """Store trigger decisions with one statement (one, or the webhook group commit's)."""
    if batch:
        conn.execute(_INSERT_DECISION, [record_values(trigger_decisions, d) for d in batch])


_INSERT_DECISION = insert(trigger_decisions)


def get_event(conn: Connection, sandbox_id: str, event_id: str) -> Event:
    """One event with its decisions, or ``NotFound``."""
    row = conn.execute(
        select(events).where(events.c.sandbox_id == sandbox_id, events.c.event_id == event_id)
    ).first()
    if row is None:
        raise NotFound(f"no event {event_id!r} in sandbox {sandbox_id!r}")
    event = _to_event(row)
    event.decisions = decisions_for(conn, event_id)
    return event


def decisions_for(conn: Connection, event_id: str) -> list[TriggerDecision]:
    """Every trigger's decision about the event."""
    rows = conn.execute(
        select(trigger_decisions)
        .where(trigger_decisions.c.event_id == event_id)
        .order_by(trigger_decisions.c.trigger_id)
    )
    return [row_record(TriggerDecision, row) for row in rows]


def list_events(
    conn: Connection,
    sandbox_id: str,
    *,
    source_id: str | None = None,
    before: str | None = None,
    limit: int = 20,
) -> list[Event]:
    """Events newest first, with their decisions (keyset by ``event_id``)."""
    query = select(events).where(events.c.sandbox_id == sandbox_id)
    if source_id is not None:
        query = query.where(events.c.source_id == source_id)
    if before is not None:
        query = query.where(events.c.event_id < before)
    found = [
        _to_event(row)
        for row in conn.execute(query.order_by(events.c.event_id.desc()).limit(limit))
    ]
    for event in found:
        event.decisions = decisions_for(conn, event.event_id)
    return found


def prune_events(
    conn: Connection,
    older_than: datetime,
    sandbox_id: str | None = None,
    *,
    dry_run: bool = False,
) -> int:
    """Delete events (and their trigger decisions) received before ``older_than``, in
    ``sandbox_id`` only when given; returns how many (``dry_run``: would be deleted)."""
    where = [events.c.received_at < older_than]
    if sandbox_id is not None:
        where.append(events.c.sandbox_id == sandbox_id)
    if dry_run:
        return int(
            conn.execute(select(func.count()).select_from(events).where(*where)).scalar_one()
        )
    old = select(events.c.event_id).where(*where)
    conn.execute(delete(trigger_decisions).where(trigger_decisions.c.event_id.in_(old)))
    return int(conn.execute(delete(events).where(*where)).rowcount or 0)


def recent_decisions(
    conn: Connection, trigger_id: str, *, limit: int = 20
) -> list[TriggerDecision]:
    """The trigger's newest decisions, newest first (what ``doctor`` reads to see a trigger
    that filters out everything it receives)."""
    rows = conn.execute(
        select(trigger_decisions)
        .where(trigger_decisions.c.trigger_id == trigger_id)
        .order_by(trigger_decisions.c.decided_at.desc())
        .limit(limit)
    )
    return [row_record(TriggerDecision, row) for row in rows]
