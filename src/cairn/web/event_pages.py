"""The events pages: what each source received (rejected deliveries included) and what
every trigger decided about it, the page that answers "why didn't my agent fire?".

Reads go through ``cairn.api.operations`` (``list_events``, ``get_event``) and the
explanation through ``cairn.services.diagnosis`` (``explain_event``), like the API's own
routes, so a viewer sees what a viewer may see. Events are keyset-paged by id, newest
first; ids sort by time, so one page costs one indexed read whatever the ledger's size.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cairn.api import operations as ops
from cairn.errors import NotFound, UsageError
from cairn.services import diagnosis
from cairn.web.pages import diagnosed, page, render
from cairn.web.sessions import Session

router = APIRouter(include_in_schema=False)

EVENTS_PAGE = 25
"""Events a page lists: each brings its decisions (one read per event in the store)."""


def _render(request: Request, session: Session, name: str, **context: Any) -> Response:
    """``name`` with the sandbox's sources and triggers by id (an event names them)."""
    caller = session.caller
    sources = {s["source_id"]: s for s in ops.list_sources(caller)}
    triggers = {t["trigger_id"]: t for t in ops.list_triggers(caller)}
    return render(request, session, name, sources=sources, triggers=triggers, **context)


@page("/events", on=router)
def _events_page(request: Request, session: Session) -> Response:
    """Events newest first, with rejected deliveries and each trigger's decision."""
    caller = session.caller
    source = request.query_params.get("source", "").strip()
    before = request.query_params.get("before", "").strip()
    notices: list[str] = []
    events: list[dict[str, Any]] = []
    next_before = None
    try:
        page = ops.list_events(
            caller, source=source or None, before=before or None, limit=EVENTS_PAGE
        )
        events, next_before = page["events"], page["next_before"]
    except (NotFound, UsageError) as error:
        notices.append(str(error))
    return _render(
        request,
        session,
        "events.html",
        events=events,
        next_before=next_before,
        source=source,
        before=before,
        notices=notices,
    )


@page("/events/{event_id}", on=router)
def _event_page(request: Request, session: Session, event_id: str) -> Response:
    """One event: its payload, every trigger's decision (with the run it fired) and the
    plain-English explanation."""
    event: dict[str, Any] = ops.get_event(session.caller, event_id)
    explanation = diagnosed(diagnosis.explain_event, session, event_id)
    return _render(request, session, "event.html", event=event, explanation=explanation)
