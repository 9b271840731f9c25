"""``stripe``: Stripe event destinations (webhook endpoints).

Stripe signs ``"<t>." + body`` with the endpoint's signing secret (``whsec_…``, which Stripe
issues: paste it) and sends ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``. While a
secret is being rolled Stripe sends one ``v1`` per live secret, so any match is enough. A
timestamp more than five minutes away is refused (Stripe's default tolerance). The type
and the id (``evt_…``) come from the body; Stripe retries with the same id for up to three
days, so a retry is acknowledged without firing again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cairn.errors import UsageError
from cairn.webhooks.base import Delivery, Incoming, WebhookProvider, hex_hmac


class StripeProvider(WebhookProvider):
    """See the module docstring."""

    name = "stripe"
    title = "Stripe"
    signature_header = "Stripe-Signature"
    issues_secret = True
    secret_hint = (
        "Stripe shows it as 'Signing secret' (whsec_…) on the endpoint's page in the "
        "Dashboard (Developers → Webhooks), or `stripe listen` prints it"
    )
    kept_headers = ("User-Agent",)
    tolerance_s = 300

    def check_secret(self, secret: str) -> str:
        """Stripe's secrets start with ``whsec_``."""
        secret = secret.strip()
        if not secret.startswith("whsec_"):
            raise UsageError(f"a Stripe signing secret starts with 'whsec_'; {self.secret_hint}")
        return secret

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """The ``t`` within the tolerance, then any ``v1`` matching any secret."""
        header = self.required(incoming, self.signature_header)
        parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
        stamps = [value.strip() for key, value in parts if key.strip() == "t"]
        offered = [value.strip() for key, value in parts if key.strip() == "v1"]
        if not stamps or not offered:
            raise self.refuse(
                incoming, "unsigned", "Stripe-Signature has no t= timestamp or no v1= signature"
            )
        self.check_age(incoming, stamps[0])
        signed = stamps[0].encode() + b"." + incoming.body
        expected = [hex_hmac(s, signed) for s in secrets]
        return self.matching(incoming, expected, offered)

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """An Event object: ``type`` (``invoice.paid``), ``id`` (``evt_…``), the whole body
        as the payload (filters read ``data.object.…``)."""
        data = self.json_body(incoming)
        event_type, event_id = data.get("type"), data.get("id")
        if not isinstance(event_type, str) or not event_type or not isinstance(event_id, str):
            raise self.refuse(
                incoming, "malformed", 'a Stripe event has a string "type" and "id" (evt_…)'
            )
        facts = self.facts(incoming, delivery_id=event_id, type_from="body.type")
        return Delivery(event_type, data, event_id, facts)


provider = StripeProvider()
