"""Webhook ingestion: ``POST /hooks/{source_id}``, signed the way the source's provider
signs (``cairn.webhooks``: Cairn's envelope, GitHub, Stripe, Slack, Linear, Standard
Webhooks, generic HMAC).


Answers 202 with the event id and every trigger's decision once the event is stored (200
for providers whose retry logic wants exactly 200: Slack, Linear); 200 for a repeated
sender event id (acknowledged, not fired again); a handshake (GitHub's ping, Slack's
url_verification) is answered as the provider expects and recorded without firing; 401 for
a missing, wrong or stale signature; 400 for a body the provider does not send (malformed,
nested too deep, NaN); 413 for a body over the limit. Refused deliveries to a known source
are recorded with their reason, at most a few a minute per source, the rest counted
(``cairn.services.rejections``). When the backlog is full the answer is 503 with
``Retry-After`` and nothing is recorded: senders retry a 5xx, never a 2xx, so a 2xx always
means the event is decided and its runs queued.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cairn.api.problems import problem
from cairn.errors import Busy
from cairn.services.app import App
from cairn.services.ingest import ingest, record_rejected
from cairn.services.rejections import RejectionLimiter
from cairn.services.webhooks import MAX_BODY_BYTES, DeliveryRejected, record_handshake
from cairn.telemetry.context import valid_traceparent
from cairn.webhooks import read_delivery

hooks = APIRouter(tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A repeated event id, or a handshake answered (not fired)"},
    202: {"description": "Stored; the body lists each trigger's decision"},
    400: {"description": "Malformed JSON, nested too deep, NaN, or no event type"},
    401: {"description": "Missing, wrong or stale signature"},
    404: {"description": "No such webhook source"},
    413: {"description": "Body over the size limit"},
    503: {"description": "Backlog full: nothing recorded; retry after Retry-After seconds"},
}


@hooks.post("/hooks/{source_id}", status_code=202, responses=_RESPONSES)
async def receive(source_id: str, request: Request) -> JSONResponse:
    """Receive one delivery, verified and mapped by the source's provider (Cairn's own:
    ``{"type": "issue.opened", "id": "<sender id>", "payload": {…}}`` with
    ``X-Cairn-Timestamp`` and ``X-Cairn-Signature``)."""
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
        delivery = read_delivery(source, request.headers, body)
    except DeliveryRejected as rejected:
        recorded = _limiter(request).admit(source.source_id, str(rejected))
        if recorded is not None:
            record_rejected(cairn, source, recorded, rejected.facts)
        title = {400: "Bad request", 401: "Unauthorized", 413: "Payload too large"}
        return problem(
            rejected.http_status,
            title.get(rejected.http_status, "Rejected"),
            str(rejected),
            "DeliveryRejected",
        )
    if delivery.reply is not None:
        answered = record_handshake(
            cairn,
            source,
            delivery.event_type,
            delivery.payload,
            delivery.sender_event_id,
            delivery.facts,
        )
        return JSONResponse(
            delivery.reply.body | {"event_id": answered.event_id}, delivery.reply.status
        )
    try:
        result = await ingest(
            cairn,
            source,
            delivery.event_type,
            delivery.payload,
            delivery.sender_event_id,
            delivery=delivery.facts,
            traceparent=valid_traceparent(request.headers.get("traceparent")),
        )
    except Busy as busy:
        refused = problem(503, "Unavailable", str(busy), "Busy")
        refused.headers["Retry-After"] = str(busy.retry_after_s)
        return refused
    status = 200 if result.duplicate else delivery.accepted_status
    return JSONResponse(result.to_dict(), status_code=status)


def _limiter(request: Request) -> RejectionLimiter:
    """The server's one limiter of recorded refusals (``cairn.services.rejections``)."""
    state = request.app.state
    if not hasattr(state, "rejections"):
        state.rejections = RejectionLimiter()
    limiter: RejectionLimiter = state.rejections
    return limiter


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
