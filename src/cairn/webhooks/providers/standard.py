"""``standard``: Standard Webhooks, as Svix and the services built on it send them (OpenAI,
Resend, Clerk and others).

The sender signs ``"<webhook-id>.<webhook-timestamp>." + body`` with the key in its
``whsec_<base64>`` secret (paste it) and sends ``webhook-signature: v1,<base64> [v1,<base64>…]``
(space-separated, one per live secret during a rotation). A timestamp more than five
minutes away is refused; ``webhook-id`` is the idempotency key, so a redelivery is
acknowledged without firing. Svix's own ``svix-id``/``svix-timestamp``/``svix-signature``
headers are read the same way. The type is the body's ``type``; the whole body (``type``,
``timestamp``, ``data``) is the payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.errors import UsageError
from cairn.webhooks.base import Delivery, Incoming, WebhookProvider


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


class StandardProvider(WebhookProvider):
    """See the module docstring."""

    name = "standard"
    title = "Standard Webhooks"
    signature_header = "webhook-signature"
    issues_secret = True
    secret_hint = "the sender shows a whsec_… signing secret for the endpoint"
    kept_headers = ("webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp", "User-Agent")
    tolerance_s = 300

    def check_secret(self, secret: str) -> str:
        """``whsec_`` and base64 (the prefix is optional, as the spec allows)."""
        secret = secret.strip()
        try:
            key = _key(secret)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < 16:
            raise UsageError(
                "a Standard Webhooks secret is 'whsec_' followed by base64 (at least 16 "
                f"bytes); {self.secret_hint}"
            )
        return secret

    def new_secret(self) -> str:
        """For senders that accept one: ``whsec_`` + 32 random bytes in base64."""
        import secrets

        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

    def _headers(self, incoming: Incoming) -> tuple[str, str, str]:
        prefix = "svix-" if incoming.header("svix-signature") else "webhook-"
        return (
            self.required(incoming, prefix + "id"),
            self.required(incoming, prefix + "timestamp"),
            self.required(incoming, prefix + "signature"),
        )

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """The timestamp within five minutes, then any ``v1,`` signature matching any key."""
        msg_id, timestamp, signature = self._headers(incoming)
        self.check_age(incoming, timestamp)
        signed = f"{msg_id}.{timestamp}.".encode() + incoming.body
        expected = [
            base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
            for s in secrets
        ]
        offered = [item.split(",", 1)[1] for item in signature.split() if item.startswith("v1,")]
        return self.matching(incoming, expected, offered)

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """The body's ``type``; ``webhook-id`` is the sender id."""
        data = self.json_body(incoming)
        event_type = data.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise self.refuse(incoming, "malformed", 'the body has no string "type"')
        msg_id = incoming.header("webhook-id") or incoming.header("svix-id")
        facts = self.facts(incoming, delivery_id=msg_id, type_from="body.type")
        return Delivery(event_type, data, msg_id, facts)


provider = StandardProvider()
