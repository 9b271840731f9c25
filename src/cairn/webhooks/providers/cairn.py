"""``cairn``: Cairn's own envelope, the default for sources you send to yourself.

The sender sends ``X-Cairn-Timestamp: <unix seconds>`` and ``X-Cairn-Signature:
v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` (several comma-separated values are
accepted, for a sender rotating its secret) and a body ``{"type", "id", "payload"}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.webhooks.base import Delivery, Incoming, WebhookProvider, hex_hmac

TOLERANCE_S = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Cairn-Signature`` value for a delivery (senders and tests use it)."""
    return "v1=" + hex_hmac(secret, timestamp.encode() + b"." + body)


class CairnProvider(WebhookProvider):
    """Today's envelope (docs/webhooks.md, "Cairn's own envelope")."""

    name = "cairn"
    title = "Cairn"
    signature_header = "X-Cairn-Signature"
    secret_hint = "Cairn generates it when the source is added"
    kept_headers = ("X-Cairn-Event-Id", "User-Agent")
    tolerance_s = TOLERANCE_S

    def new_secret(self) -> str:
        """``whsec_`` and 32 random bytes, URL-safe."""
        return "whsec_" + secrets.token_urlsafe(32)

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """``X-Cairn-Timestamp`` within the tolerance, then a ``v1=`` signature that matches."""
        timestamp = incoming.header("X-Cairn-Timestamp")
        signature = incoming.header("X-Cairn-Signature")
        if not timestamp or not signature:
            raise self.refuse(
                incoming, "unsigned", "missing X-Cairn-Timestamp or X-Cairn-Signature header"
            )
        self.check_age(incoming, timestamp)
        offered = [part.strip() for part in signature.split(",")]
        expected = [sign(s, timestamp, incoming.body) for s in secrets]
        return self.matching(incoming, expected, offered)

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """``{"type": …, "payload": …, "id": …}``; the id may come in ``X-Cairn-Event-Id``."""
        data = self.json_body(incoming)
        if not isinstance(data.get("type"), str) or not data["type"]:
            raise self.refuse(
                incoming,
                "malformed",
                'the body must be a JSON object with a non-empty "type" (and "payload", "id")',
            )
        sender_id = data.get("id", incoming.header("X-Cairn-Event-Id"))
        if isinstance(sender_id, bool) or not isinstance(sender_id, (str, int, type(None))):
            raise self.refuse(incoming, "malformed", '"id" must be a string or an integer')
        # ``0`` is an id like any other: only a missing or empty one means "no id"
        sender = None if sender_id is None or sender_id == "" else str(sender_id)
        return Delivery(
            data["type"],
            data.get("payload", {}),
            sender,
            self.facts(incoming, delivery_id=sender, type_from="body.type"),
        )


provider = CairnProvider()
