"""``slack``: the Slack Events API (an app's Event Subscriptions Request URL).

Slack signs ``"v0:<X-Slack-Request-Timestamp>:" + body`` with the app's Signing Secret
(Basic Information → App Credentials: paste it) and sends ``X-Slack-Signature: v0=<hex>``;
a timestamp more than five minutes old is refused, as Slack advises. Outer types:

- ``url_verification``: Slack checks the Request URL; answered with its ``challenge``.
- ``event_callback``: unwrapped: the type is ``event.type`` (``app_mention``, ``message``),
  the payload is the inner ``event``, the sender id is ``event_id``. Slack retries a
  delivery it thinks failed (``X-Slack-Retry-Num``) with the same ``event_id``, so a retry
  is acknowledged without firing again.
- ``app_rate_limited``: Slack stopped sending for a minute; recorded and answered.

Accepted deliveries are answered 200: Slack expects a 2xx within three seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cairn.webhooks.base import Delivery, Incoming, Reply, WebhookProvider, hex_hmac


class SlackProvider(WebhookProvider):
    """See the module docstring."""

    name = "slack"
    title = "Slack"
    signature_header = "X-Slack-Signature"
    issues_secret = True
    secret_hint = (
        "Slack shows it as 'Signing Secret' under Basic Information → App Credentials "
        "in your app's settings"
    )
    kept_headers = ("X-Slack-Retry-Num", "X-Slack-Retry-Reason", "User-Agent")
    tolerance_s = 300
    accepted_status = 200

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """The timestamp within five minutes, then ``v0=`` + hex HMAC-SHA256 of the base string."""
        timestamp = self.required(incoming, "X-Slack-Request-Timestamp")
        signature = self.required(incoming, self.signature_header)
        self.check_age(incoming, timestamp)
        base = b"v0:" + timestamp.encode() + b":" + incoming.body
        expected = ["v0=" + hex_hmac(s, base) for s in secrets]
        return self.matching(incoming, expected, [signature.strip()])

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """See the module docstring for the three outer types."""
        data = self.json_body(incoming)
        outer = data.get("type")
        if outer == "url_verification":
            facts = self.facts(incoming, type_from="body.type", handshake="url_verification")
            reply = Reply(200, {"challenge": data.get("challenge")})
            return Delivery("url_verification", {}, None, facts, reply)
        if outer == "app_rate_limited":
            facts = self.facts(incoming, type_from="body.type", handshake="app_rate_limited")
            return Delivery("app_rate_limited", data, None, facts, Reply(200, {"ok": True}))
        if outer != "event_callback":
            raise self.refuse(
                incoming,
                "unknown_event_type",
                f"unknown Events API type {outer!r} (expected event_callback, "
                "url_verification or app_rate_limited)",
            )
        event = data.get("event")
        event_id = data.get("event_id")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise self.refuse(incoming, "malformed", 'an event_callback has an "event.type"')
        sender = str(event_id) if event_id else None
        facts = self.facts(incoming, delivery_id=sender, type_from="body.event.type")
        return Delivery(event["type"], event, sender, facts)


provider = SlackProvider()
