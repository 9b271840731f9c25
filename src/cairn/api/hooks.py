"""Webhook ingestion: ``POST /hooks/{source_id}``, signed by the source's secret.

Answers 202 with the event id and every trigger's decision once the event is stored; 200
for a repeated sender event id (acknowledged, not fired again); 401 for a missing, wrong
or stale signature; 400 for malformed JSON; 413 for a body over the limit. Every refused
delivery to a known source is recorded with its reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from cairn.api.app import problem
from cairn.services.app import App
from cairn.services.ingest import ingest, record_rejected
from cairn.services.webhooks import MAX_BODY_BYTES, DeliveryRejected, parse_body, verify

hooks = APIRouter(tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A repeated event id: acknowledged, not fired again"},
    202: {"description": "Stored; the body lists each trigger's decision"},
    400: {"description": "Malformed JSON or no event type"},
    401: {"description": "Missing, wrong or stale signature"},
    404: {"description": "No such webhook source"},
    413: {"description": "Body over the size limit"},
}


@hooks.post("/hooks/{source_id}", status_code=202, responses=_RESPONSES)
async def receive(
    source_id: str,
    request: Request,
    x_cairn_timestamp: Annotated[str | None, Header()] = None,
    x_cairn_signature: Annotated[str | None, Header()] = None,
    x_cairn_event_id: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Receive one event: ``{"type": "issue.opened", "id": "<sender id>", "payload": {…}}``."""
    cairn: App = request.app.state.cairn
    source = cairn.caches.webhook_source(source_id)
    if (
        source is None
        or source.kind not in ("webhook", "integration")
        or (source.status == "revoked")
    ):
        return problem(404, "Not found", f"no webhook source {source_id!r}", "NotFound")
    try:
        body = await _read_limited(request)
        verify(source.secret.get("signing_secret", ""), x_cairn_timestamp, x_cairn_signature, body)
        delivery = parse_body(body, x_cairn_event_id)
    except DeliveryRejected as rejected:
        record_rejected(cairn, source, str(rejected))
        title = {400: "Bad request", 401: "Unauthorized", 413: "Payload too large"}
        return problem(
            rejected.http_status,
            title.get(rejected.http_status, "Rejected"),
            str(rejected),
            "DeliveryRejected",
        )
    result = await ingest(
        cairn, source, delivery.event_type, delivery.payload, delivery.sender_event_id
    )
    return JSONResponse(result.to_dict(), status_code=200 if result.duplicate else 202)


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise DeliveryRejected(
            f"body of {declared} bytes is over the {MAX_BODY_BYTES} byte limit", 413
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise DeliveryRejected(f"body is over the {MAX_BODY_BYTES} byte limit", 413)
    return body
