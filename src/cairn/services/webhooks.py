"""Webhook sources: creation (with a signing secret) and verification of deliveries.

Signature scheme (docs/webhooks.md): the sender sends ``X-Cairn-Timestamp: <unix seconds>``
and ``X-Cairn-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``. A delivery
whose timestamp is more than ``TOLERANCE_S`` away from now is refused, so a captured request
cannot be replayed later; within the window a replay is caught by the sender event id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cairn.domain.sources import DataSource
from cairn.errors import CairnError, UsageError
from cairn.ids import new_id
from cairn.services.app import App

TOLERANCE_S = 300
MAX_BODY_BYTES = 256 * 1024


class DeliveryRejected(CairnError):
    """A webhook delivery that is refused; ``http_status`` says how (401, 400, 413)."""

    def __init__(self, message: str, http_status: int = 401) -> None:
        super().__init__(message)
        self.http_status = http_status


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Cairn-Signature`` value for a delivery (senders and tests use it)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None
) -> None:
    """Raise ``DeliveryRejected`` (401) unless the signature and timestamp are good."""
    if not timestamp or not signature:
        raise DeliveryRejected("missing X-Cairn-Timestamp or X-Cairn-Signature header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise DeliveryRejected(
            f"X-Cairn-Timestamp {timestamp[:20]!r} is not unix seconds"
        ) from None
    skew = (now if now is not None else time.time()) - sent_at
    if abs(skew) > TOLERANCE_S:
        raise DeliveryRejected(
            f"stale delivery: timestamp is {abs(skew):.0f} s from now "
            f"(tolerance {TOLERANCE_S} s); re-sign with the current time"
        )
    expected = sign(secret, timestamp, body)
    offered = [part.strip() for part in signature.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise DeliveryRejected("bad signature: it does not match this source's signing secret")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery's content."""

    event_type: str
    payload: Any
    sender_event_id: str | None


def parse_body(body: bytes, header_event_id: str | None) -> Delivery:
    """The event in a verified body: ``{"type": …, "payload": …, "id": …}``."""
    from cairn.domain.limits import loads
    from cairn.errors import InvalidJSON

    try:
        data = loads(body, "the body")
    except InvalidJSON as exc:  # not JSON, nested too deep, NaN: refused and recorded
        raise DeliveryRejected(str(exc), exc.http_status) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or not data["type"]:
        raise DeliveryRejected(
            'the body must be a JSON object with a non-empty "type" (and "payload", "id")', 400
        )
    sender_id = data.get("id", header_event_id)
    if isinstance(sender_id, bool) or not isinstance(sender_id, (str, int, type(None))):
        raise DeliveryRejected('"id" must be a string or an integer', 400)
    # ``0`` is an id like any other: only a missing or empty one means "no id"
    sender = None if sender_id is None or sender_id == "" else str(sender_id)
    return Delivery(data["type"], data.get("payload", {}), sender)


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A created webhook source: where to send, and the secret (shown once)."""

    source: DataSource
    path: str
    secret: str


def add_webhook_source(app: App, sandbox_id: str, label: str) -> NewWebhook:
    """A webhook source with a fresh signing secret (stored encrypted, shown once)."""
    from cairn.store import sources as source_store
    from cairn.store.sandboxes import require_sandbox

    if not label.strip():
        raise UsageError("a source needs a non-empty label")
    source_id = new_id("src")
    secret = "whsec_" + secrets.token_urlsafe(32)
    path = f"/hooks/{source_id}"
    source = DataSource(
        source_id,
        sandbox_id,
        "webhook",
        label,
        {"path": path, "secret_fields": ["signing_secret"]},
        secret={"signing_secret": secret},
    )
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        source_store.create_source(conn, source, app.secrets)
    return NewWebhook(source, path, secret)
