"""``hmac``: any sender that signs the raw body with HMAC-SHA256 or HMAC-SHA1.

For everything without a provider of its own (Shopify, Zendesk, Typeform, a home-grown
service). Per-source options say how that sender signs and where its event type is:

============  =========================================  ==========================
option        meaning                                    default
============  =========================================  ==========================
header        the signature header                       ``X-Signature``
algorithm     ``sha256`` or ``sha1``                     ``sha256``
encoding      ``hex`` or ``base64`` digest               ``hex``
prefix        text before the digest (``sha256=``)       none
type_path     dotted JSON path of the event type         (or ``type_header``)
type_header   a header holding the event type            (or ``type_path``)
id_path       dotted JSON path of the sender's event id  none
id_header     a header holding it                        none
============  =========================================  ==========================

Without a signed timestamp, replays are caught only by the event id: set ``id_path`` or
``id_header`` when the sender has one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.domain.triggers import payload_value
from cairn.errors import UsageError
from cairn.webhooks.base import Delivery, Incoming, WebhookProvider, first_match

_OPTIONS = (
    "header",
    "algorithm",
    "encoding",
    "prefix",
    "type_path",
    "type_header",
    "id_path",
    "id_header",
)


class HmacProvider(WebhookProvider):
    """See the module docstring."""

    name = "hmac"
    title = "HMAC"
    signature_header = "the configured signature header"
    secret_hint = "paste it where the sender asks for a signing secret"
    kept_headers = ("User-Agent",)

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Known keys with valid values, defaults filled in; a type source is required."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise UsageError(
                f"unknown hmac option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}"
            )
        values = {k: str(v) for k, v in options.items() if v not in (None, "")}
        values.setdefault("header", "X-Signature")
        values.setdefault("algorithm", "sha256")
        values.setdefault("encoding", "hex")
        values.setdefault("prefix", "")
        if values["algorithm"] not in ("sha256", "sha1"):
            raise UsageError(f"hmac algorithm {values['algorithm']!r}: use sha256 or sha1")
        if values["encoding"] not in ("hex", "base64"):
            raise UsageError(f"hmac encoding {values['encoding']!r}: use hex or base64")
        if "type_path" not in values and "type_header" not in values:
            raise UsageError(
                "the hmac provider needs where the event type is: --type-path (a dotted JSON "
                "path such as 'event.type') or --type-header (such as 'X-Event-Type')"
            )
        return values

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """``prefix`` + the digest of the raw body, in the configured header."""
        header = str(options.get("header", "X-Signature"))
        signature = incoming.header(header)
        if not signature:
            raise self.refuse(incoming, "unsigned", f"missing {header} header")
        algorithm = hashlib.sha1 if options.get("algorithm") == "sha1" else hashlib.sha256
        prefix = str(options.get("prefix", ""))
        expected = []
        for secret in secrets:
            digest = hmac.new(secret.encode(), incoming.body, algorithm).digest()
            text = (
                base64.b64encode(digest).decode()
                if options.get("encoding") == "base64"
                else (digest.hex())
            )
            expected.append(prefix + text)
        used = first_match(expected, [signature.strip()])
        if used is None:
            raise self.refuse(
                incoming,
                "bad_signature",
                f"bad signature: {header} does not match this source's signing secret "
                "(a tampered body, another secret, or another header/prefix/encoding)",
            )
        return used

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """The type and id from the configured JSON paths or headers."""
        data = self.json_body(incoming)
        if options.get("type_header"):
            where = f"{options['type_header']} header"
            event_type: Any = incoming.header(str(options["type_header"]))
        else:
            where = f"body.{options.get('type_path')}"
            event_type = payload_value(data, str(options.get("type_path")))
        if not isinstance(event_type, str) or not event_type:
            raise self.refuse(incoming, "malformed", f"no event type at {where}")
        sender: Any = None
        if options.get("id_header"):
            sender = incoming.header(str(options["id_header"]))
        elif options.get("id_path"):
            sender = payload_value(data, str(options["id_path"]))
        sender_id = str(sender) if isinstance(sender, str | int) and sender != "" else None
        facts = self.facts(incoming, delivery_id=sender_id, type_from=where)
        return Delivery(event_type, data, sender_id, facts)


provider = HmacProvider()
