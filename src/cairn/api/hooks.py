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
(``cairn.services.rejections``). When the backlog is full, a delivery that would fire a
trigger is answered 503 with ``Retry-After`` and nothing of it is recorded: senders retry
a 5xx, never a 2xx, so a 2xx always means the event is decided and its runs queued.

The hottest route of the server, so deliveries are served by ``HookDeliveries``, an ASGI
middleware ahead of FastAPI's routing and dependency machinery, and stored by the group
commit of ``cairn.services.ingest`` (several events to a transaction, each answered after
its commit). The FastAPI route below answers the same way (through the same ``deliver``)
and documents the endpoint in the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cairn.api.problems import PROBLEM, title_for
from cairn.domain.sources import DataSource
from cairn.errors import Busy, CairnError
from cairn.services.app import App
from cairn.services.ingest import GroupCommit, IngestResult, ingest, record_rejected
from cairn.services.rejections import RejectionLimiter
from cairn.services.webhooks import MAX_BODY_BYTES, DeliveryRejected, record_handshake
from cairn.telemetry.context import valid_traceparent
from cairn.webhooks import read_delivery

hooks = APIRouter(tags=["webhooks"])
log = logging.getLogger("cairn.api")

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
async def receive(source_id: str, request: Request) -> Response:
    """Receive one delivery, verified and mapped by the source's provider (Cairn's own:
    ``{"type": "issue.opened", "id": "<sender id>", "payload": {…}}`` with
    ``X-Cairn-Timestamp`` and ``X-Cairn-Signature``)."""
    answer = await deliver(
        _hook_state(request.app.state),
        source_id,
        request.headers,
        lambda: _read(request.headers, request.stream()),
    )
    return Response(answer.body, answer.status, answer.headers, answer.media_type)


class HookDeliveries:
    """ASGI middleware answering ``POST /hooks/{source_id}`` itself (``deliver``) and
    passing everything else on. Added to the FastAPI application, so ``scope["app"]`` is
    that application and its ``state.cairn`` the ``App``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        source_id = path[7:] if path.startswith("/hooks/") else ""
        if not source_id or "/" in source_id or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            answer = await deliver(
                _hook_state(scope["app"].state),
                source_id,
                headers,
                lambda: _read(headers, _asgi_chunks(receive)),
            )
        except _Gone:  # the sender hung up mid-body: nothing to answer, nothing recorded
            return
        except Exception as exc:  # answered as the problem handlers behind us would
            answer = _failed(exc, scope["path"])
        head = [
            (b"content-length", str(len(answer.body)).encode()),
            (b"content-type", answer.media_type.encode()),
        ]
        head += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": head})
        await send({"type": "http.response.body", "body": answer.body})


@dataclass(frozen=True, slots=True)
class Answer:
    """What a delivery is answered with."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, content: Any) -> Answer:
    return Answer(status, _dumps(content))


def _problem(
    status: int, title: str, detail: str, error: str, headers: dict[str, str] | None = None
) -> Answer:
    content = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Answer(status, _dumps(content | {"error": error}), PROBLEM, headers or {})


def _dumps(content: Any) -> bytes:
    """As FastAPI's ``JSONResponse`` renders it."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode()


@dataclass(slots=True)
class HookState:
    """What the webhook route keeps between requests: the app, the limiter of recorded
    refusals, the group commit."""

    cairn: App
    rejections: RejectionLimiter = field(default_factory=RejectionLimiter)
    writer: GroupCommit | None = None


def _hook_state(state: Any) -> HookState:
    """The server's one ``HookState`` (made at the first delivery)."""
    found = getattr(state, "hooks", None)
    if not isinstance(found, HookState) or found.cairn is not state.cairn:
        found = state.hooks = HookState(state.cairn)
    return found


_SOURCE_ATTEMPTS = 3
"""How often a delivery is verified again when its source changes under it."""


async def deliver(
    hook: HookState,
    source_id: str,
    headers: Mapping[str, str],
    read: Callable[[], Awaitable[bytes]],
) -> Answer:
    """Answer one delivery to ``source_id`` (see the module docstring); ``read`` gives
    the body, or raises ``DeliveryRejected`` (413) past the limit."""
    cairn = hook.cairn
    entry = cairn.caches.source_entry(source_id)
    fresh = False
    body: bytes | None = None
    for _attempt in range(_SOURCE_ATTEMPTS):
        if entry is None:
            return _not_found(source_id)
        source, stamp = entry
        if source.kind not in ("webhook", "integration") or source.status == "revoked":
            if not fresh:  # the cache may be behind (a revoked source restored)
                entry, fresh = cairn.caches.source_entry(source_id, fresh=True), True
                continue
            return _not_found(source_id)
        if body is None:
            try:
                body = await read()
            except DeliveryRejected as rejected:
                return _refused(hook, source, rejected)
        try:
            delivery = read_delivery(source, headers, body)
        except DeliveryRejected as rejected:
            if not fresh:  # the cached secret may be an old one: check before refusing
                entry, fresh = cairn.caches.source_entry(source_id, fresh=True), True
                if entry is None or entry[1] != stamp:
                    continue
            return _refused(hook, source, rejected)
        if delivery.reply is not None:
            if not fresh:  # rare: verify with the source as stored now
                entry, fresh = cairn.caches.source_entry(source_id, fresh=True), True
                continue
            answered = record_handshake(
                cairn,
                source,
                delivery.event_type,
                delivery.payload,
                delivery.sender_event_id,
                delivery.facts,
            )
            return _json(
                delivery.reply.status, delivery.reply.body | {"event_id": answered.event_id}
            )
        traceparent = valid_traceparent(headers.get("traceparent"))
        try:
            result: IngestResult | None
            if cairn.executor is None:  # no server around (a bare router): one at a time
                if not fresh:
                    entry, fresh = cairn.caches.source_entry(source_id, fresh=True), True
                    continue
                result = await ingest(
                    cairn,
                    source,
                    delivery.event_type,
                    delivery.payload,
                    delivery.sender_event_id,
                    delivery=delivery.facts,
                    traceparent=traceparent,
                )
            else:
                if hook.writer is None:
                    hook.writer = GroupCommit(cairn)
                result = await hook.writer.ingest(
                    source,
                    stamp,
                    delivery.event_type,
                    delivery.payload,
                    delivery.sender_event_id,
                    delivery.facts,
                    traceparent,
                )
        except Busy as busy:
            return _problem(
                503, "Unavailable", str(busy), "Busy", {"Retry-After": str(busy.retry_after_s)}
            )
        if result is None:  # the source changed since it was verified: again, as it is now
            entry, fresh = cairn.caches.source_entry(source_id, fresh=True), True
            continue
        status = 200 if result.duplicate else delivery.accepted_status
        return _json(status, result.to_dict())
    return _problem(
        503,
        "Unavailable",
        f"webhook source {source_id!r} is being changed; retry",
        "Busy",
        {"Retry-After": "1"},
    )


def _refused(hook: HookState, source: DataSource, rejected: DeliveryRejected) -> Answer:
    """A refusal, recorded (a few a minute per source, the rest counted)."""
    recorded = hook.rejections.admit(source.source_id, str(rejected))
    if recorded is not None:
        record_rejected(hook.cairn, source, recorded, rejected.facts)
    title = {400: "Bad request", 401: "Unauthorized", 413: "Payload too large"}
    status = rejected.http_status
    return _problem(status, title.get(status, "Rejected"), str(rejected), "DeliveryRejected")


def _failed(exc: Exception, path: str) -> Answer:
    """An error out of ``deliver`` as problem+json: a ``CairnError`` by its status (the
    ledger unreachable: 503), anything else a logged 500."""
    if isinstance(exc, CairnError):
        status = exc.http_status
        retry = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Busy) else None
        return _problem(status, title_for(status), str(exc), type(exc).__name__, retry)
    log.exception("unexpected error on POST %s", path)
    return _problem(500, "Internal error", f"internal error: {type(exc).__name__}", "InternalError")


def _not_found(source_id: str) -> Answer:
    return _problem(404, "Not found", f"no webhook source {source_id!r}", "NotFound")


async def _read(headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> bytes:
    """The body, refused (413) past ``MAX_BODY_BYTES``: by its declared length before it
    is read, else as soon as it passes it."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise DeliveryRejected(
            f"body of {declared} bytes is over the {MAX_BODY_BYTES} byte limit", 413
        )
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise DeliveryRejected(f"body is over the {MAX_BODY_BYTES} byte limit", 413)
    return body


class _Gone(Exception):
    """The sender disconnected before its body was complete."""


async def _asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as ASGI delivers them; ``_Gone`` if the sender hangs up first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
