"""Reading the events sources delivered, each with every trigger's decision about it."""

from __future__ import annotations

from cairn.domain.triggers import Event
from cairn.services.app import App
from cairn.store import events as event_store
from cairn.store import sources as source_store


def list_events(
    app: App, sandbox_id: str, source: str | None = None, before: str | None = None, limit: int = 20
) -> list[Event]:
    """Events newest first; ``source`` is a source id or label, ``before`` an event id."""
    with app.store.connect() as conn:
        source_id = source_store.get_source(conn, sandbox_id, source).source_id if source else None
        return event_store.list_events(
            conn, sandbox_id, source_id=source_id, before=before, limit=limit
        )


def get_event(app: App, sandbox_id: str, event_id: str) -> Event:
    """One event (``NotFound`` when the sandbox has none of that id)."""
    with app.store.connect() as conn:
        return event_store.get_event(conn, sandbox_id, event_id)
