"""Senders that sign deliveries the way each provider does, with the provider's own library
(githubkit, stripe, slack_sdk, standardwebhooks). Linear publishes no Python library, and
the generic HMAC provider stands for senders without one, so those two sign with the
standard library, as their documentation shows.

Each sender builds the body and headers for one delivery of a documented payload (the
fixtures beside this file), with the knobs the tests turn: the time it was signed at, the
delivery id, and the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(provider: str, name: str) -> dict[str, Any]:
    """A documented payload, as JSON."""
    data: dict[str, Any] = json.loads((FIXTURES / provider / f"{name}.json").read_text())
    return data


@dataclass(frozen=True)
class Signed:
    """One delivery ready to POST."""

    body: bytes
    headers: dict[str, str]


class Sender(Protocol):
    """Signs ``payload`` as the provider would send it."""

    provider: str

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed: ...


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class GitHub:
    """``X-Hub-Signature-256`` from ``githubkit.webhooks.sign``; ``X-GitHub-Event`` is named
    by the fixture (``issues.opened`` → ``issues``)."""

    provider = "github"

    def __init__(self, event: str) -> None:
        self.event = event

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        from githubkit.webhooks import sign

        body = _encode(payload)
        return Signed(
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/7f8ba7a",
                "X-GitHub-Event": self.event,
                "X-GitHub-Delivery": delivery_id,
                "X-GitHub-Hook-ID": "109948940",
                "X-Hub-Signature-256": sign(secret, body, "sha256"),
            },
        )


class Stripe:
    """``Stripe-Signature`` from ``stripe.WebhookSignature.generate_signature_header``;
    the delivery id is the event's ``id``."""

    provider = "stripe"

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        from stripe import WebhookSignature

        body = _encode(payload | {"id": delivery_id})
        header = WebhookSignature.generate_signature_header(
            body.decode(), secret, int(at if at is not None else time.time())
        )
        return Signed(
            body,
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": header,
            },
        )


class Slack:
    """``X-Slack-Signature`` from ``slack_sdk``'s ``SignatureVerifier``; the delivery id
    is the envelope's ``event_id``."""

    provider = "slack"

    def __init__(self, retry: int | None = None) -> None:
        self.retry = retry

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        from slack_sdk.signature import SignatureVerifier

        if payload.get("type") == "event_callback":
            payload = payload | {"event_id": delivery_id}
        body = _encode(payload)
        timestamp = str(int(at if at is not None else time.time()))
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }
        if self.retry is not None:
            headers |= {
                "X-Slack-Retry-Num": str(self.retry),
                "X-Slack-Retry-Reason": "http_timeout",
            }
        return Signed(body, headers)


class Standard:
    """``webhook-signature`` from ``standardwebhooks.Webhook.sign``."""

    provider = "standard"

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        from standardwebhooks.webhooks import Webhook

        body = _encode(payload)
        when = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
        return Signed(
            body,
            {
                "Content-Type": "application/json",
                "webhook-id": delivery_id,
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": Webhook(secret).sign(delivery_id, when, body),
            },
        )


class Linear:
    """Hex HMAC-SHA256 of the body in ``Linear-Signature`` (Linear ships no Python
    library); ``webhookTimestamp`` is set to the signing time, as Linear sets it."""

    provider = "linear"

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        sent = at if at is not None else time.time()
        body = _encode(payload | {"webhookTimestamp": int(sent * 1000)})
        return Signed(
            body,
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Linear-Webhook",
                "Linear-Delivery": delivery_id,
                "Linear-Event": str(payload.get("type")),
                "Linear-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            },
        )


class GenericHmac:
    """A sender configured as ``--header X-Shop-Hmac-Sha256 --encoding base64`` with its
    event type and id in headers, like Shopify's topic and webhook id."""

    provider = "hmac"
    options: ClassVar[dict[str, str]] = {
        "header": "X-Shop-Hmac-Sha256",
        "encoding": "base64",
        "type_header": "X-Shop-Topic",
        "id_header": "X-Shop-Webhook-Id",
    }

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def sign(
        self, secret: str, payload: dict[str, Any], *, delivery_id: str, at: float | None = None
    ) -> Signed:
        body = _encode(payload)
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return Signed(
            body,
            {
                "Content-Type": "application/json",
                "X-Shop-Topic": self.topic,
                "X-Shop-Webhook-Id": delivery_id,
                "X-Shop-Hmac-Sha256": base64.b64encode(digest).decode(),
            },
        )
