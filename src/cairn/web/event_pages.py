"""The events pages: what each source received (rejected deliveries included) and what
every trigger decided about it, the page that answers "why didn't my agent fire?".

Reads go through ``cairn.api.operations`` (``list_events``, ``get_event``) and the
explanation through ``cairn.services.diagnosis`` (``explain_event``), like the API's own
routes, so a viewer sees what a viewer may see. Events are keyset-paged by id, newest
first; ids sort by time, so one page costs one indexed read whatever the ledger's size.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cairn.api import operations as ops
from cairn.errors import NotFound, UsageError
from cairn.services import diagnosis
from cairn.web.pages import diagnosed, guarded, render
from cairn.web.sessions import Session

router = APIRouter(include_in_schema=False)

EVENTS_PAGE = 25
"""Events a page lists: each brings its decisions (one read per event in the store)."""


def _sources(caller: ops.Caller) -> dict[str, dict[str, Any]]:
    return {s["source_id"]: s for s in ops.list_sources(caller)}


def _events_page(request: Request, session: Session) -> Response:
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
    triggers = {t["trigger_id"]: t for t in ops.list_triggers(caller)}
    return render(
        request,
        session,
        "events.html",
        events=events,
        next_before=next_before,
        source=source,
        before=before,
        sources=_sources(caller),
        triggers=triggers,
        notices=notices,
    )


@router.get("/events")
async def events_page(request: Request) -> Response:
    """Events newest first, with rejected deliveries and each trigger's decision."""
    return await guarded(request, partial(_events_page, request))


def _event_page(request: Request, session: Session, event_id: str) -> Response:
    caller = session.caller
    event: dict[str, Any] = ops.get_event(caller, event_id)
    triggers = {t["trigger_id"]: t for t in ops.list_triggers(caller)}
    return render(
        request,
        session,
        "event.html",
        event=event,
        sources=_sources(caller),
        triggers=triggers,
        explanation=diagnosed(diagnosis.explain_event, session, event_id),
    )


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: str) -> Response:
    """One event: its payload, every trigger's decision (with the run it fired) and the
    plain-English explanation."""
    return await guarded(request, lambda session: _event_page(request, session, event_id))
