"""``github``: repository, organisation and App webhooks.

GitHub signs the raw body with the secret you type into the webhook form:
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``. The event name is in ``X-GitHub-Event``
and most payloads carry an ``action``, so the type is ``issues.opened``,
``pull_request.closed`` or, without an action, ``push``. ``X-GitHub-Delivery`` is the
delivery's GUID; "Redeliver" in GitHub resends the same GUID, so a redelivery is
acknowledged without firing twice. GitHub sends no timestamp: replays are caught by that id.
The ``ping`` GitHub sends when a webhook is created is answered and recorded, never fired.
Both content types GitHub offers are read (``application/json`` and the form-encoded
``payload=`` field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from cairn.webhooks.base import Delivery, Incoming, Reply, WebhookProvider, hex_hmac


class GitHubProvider(WebhookProvider):
    """See the module docstring."""

    name = "github"
    title = "GitHub"
    signature_header = "X-Hub-Signature-256"
    secret_hint = "paste it into the webhook's Secret field (Settings → Webhooks → Add webhook)"
    kept_headers = (
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "X-GitHub-Hook-ID",
        "X-GitHub-Hook-Installation-Target-Type",
        "X-GitHub-Hook-Installation-Target-ID",
        "User-Agent",
    )

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """``sha256=`` + hex HMAC-SHA256 of the raw body, with any of the secrets."""
        signature = self.required(incoming, self.signature_header)
        expected = ["sha256=" + hex_hmac(s, incoming.body) for s in secrets]
        return self.matching(incoming, expected, [signature.strip()])

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """``X-GitHub-Event`` + the payload's ``action``; the GUID is the sender id."""
        delivery_id = incoming.header("X-GitHub-Delivery")
        event = incoming.header("X-GitHub-Event")
        if not event:
            raise self.refuse(incoming, "malformed", "missing X-GitHub-Event header")
        data = self._body(incoming)
        action = data.get("action")
        if isinstance(action, str) and action:
            event_type, type_from = f"{event}.{action}", "X-GitHub-Event header + body.action"
        else:
            event_type, type_from = event, "X-GitHub-Event header"
        if event == "ping":
            facts = self.facts(
                incoming, delivery_id=delivery_id, type_from=type_from, handshake="ping"
            )
            reply = Reply(200, {"answered": "ping", "hook_id": data.get("hook_id")})
            return Delivery(event_type, data, delivery_id, facts, reply)
        facts = self.facts(incoming, delivery_id=delivery_id, type_from=type_from)
        return Delivery(event_type, data, delivery_id, facts)

    def _body(self, incoming: Incoming) -> dict[str, Any]:
        content_type = (incoming.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return self.json_body(incoming)
        fields = parse_qs(incoming.body.decode("utf-8", "replace"))
        raw = fields.get("payload", [""])[0]
        data = self.json_value(incoming, raw, "the form's payload field")
        if not isinstance(data, dict):
            raise self.refuse(incoming, "malformed", "the form's payload is not a JSON object")
        return data


provider = GitHubProvider()
