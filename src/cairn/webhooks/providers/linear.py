"""``linear``: Linear's data-change webhooks (Settings → API → Webhooks).

Linear generates the signing secret (paste it) and sends ``Linear-Signature: <hex
HMAC-SHA256 of the raw body>``. The type is the body's ``type`` and ``action``
(``Issue.create``, ``Comment.update``), spelled as Linear spells them; the sender id is the
``Linear-Delivery`` header. Linear puts the send time in the body's ``webhookTimestamp``
(unix milliseconds) and documents checking that it is within a minute of now, which
guards against replays; a redelivery with the same ``Linear-Delivery`` is acknowledged
without firing. Linear counts any answer but 200 as a failure, so accepted deliveries get 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cairn.webhooks.base import Delivery, Incoming, WebhookProvider, hex_hmac


class LinearProvider(WebhookProvider):
    """See the module docstring."""

    name = "linear"
    title = "Linear"
    signature_header = "Linear-Signature"
    issues_secret = True
    secret_hint = "Linear shows the signing secret on the webhook's page (Settings → API)"
    kept_headers = ("Linear-Delivery", "Linear-Event", "User-Agent")
    tolerance_s = 60
    accepted_status = 200

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """Hex HMAC-SHA256 of the body. The signed ``webhookTimestamp`` is inside the body,
        so its age is checked in ``parse`` (which ``receive`` always runs next), and the
        body is parsed once."""
        signature = self.required(incoming, self.signature_header)
        expected = [hex_hmac(s, incoming.body) for s in secrets]
        return self.matching(incoming, expected, [signature.strip().lower()])

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """``webhookTimestamp`` within a minute, then ``type`` + ``.`` + ``action``; the
        whole body is the payload (``data.…``)."""
        data = self.json_body(incoming)
        stamp = data.get("webhookTimestamp")
        if stamp is None:
            raise self.refuse(incoming, "unsigned", "the body has no webhookTimestamp")
        self.check_age(incoming, str(stamp), millis=True)
        kind, action = data.get("type"), data.get("action")
        if not isinstance(kind, str) or not kind:
            raise self.refuse(incoming, "malformed", 'a Linear webhook body has a "type"')
        if isinstance(action, str) and action:
            event_type, type_from = f"{kind}.{action}", "body.type + body.action"
        else:
            event_type, type_from = kind, "body.type"
        delivery_id = incoming.header("Linear-Delivery")
        facts = self.facts(incoming, delivery_id=delivery_id, type_from=type_from)
        return Delivery(event_type, data, delivery_id, facts)


provider = LinearProvider()
