"""The one interface every webhook provider implements, and the helpers they share.

A provider turns one HTTP delivery (headers, raw body, the source's signing secrets) into
Cairn's event: it *verifies* the signature the way its sender signs, then *maps* the body
to an event type, a sender event id (for deduplication) and the payload triggers filter on.
A provider may instead answer a handshake (Slack's ``url_verification``, GitHub's ``ping``):
the delivery is recorded and answered, and never fires a trigger.

Refusals raise ``cairn.errors.DeliveryRejected`` carrying a refusal code
(``cairn.domain.deliveries.Refusal``) and the provider's own words, so the recorded event
says "stale Slack timestamp" rather than a generic 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from cairn.domain.deliveries import DeliveryFacts, Refusal
from cairn.errors import DeliveryRejected, UsageError

_HTTP_STATUS: dict[Refusal, int] = {
    "unsigned": 401,
    "bad_signature": 401,
    "stale": 401,
    "bad_timestamp": 401,
    "no_secret": 401,
    "malformed": 400,
    "unknown_event_type": 400,
    "too_large": 413,
}


@dataclass(frozen=True, slots=True)
class Incoming:
    """One delivery as it reached the server. ``headers`` keys are lower-case."""

    headers: Mapping[str, str]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handshake is answered with (instead of the usual 202 and decisions)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery mapped to Cairn's event; ``reply`` set for a handshake."""

    event_type: str
    payload: Any
    sender_event_id: str | None
    facts: DeliveryFacts
    reply: Reply | None = None
    accepted_status: int = 202


class WebhookProvider:
    """Base of every provider: subclasses set the class attributes and implement
    ``verify`` and ``parse``. Instances are stateless and shared."""

    name: ClassVar[str]
    title: ClassVar[str]
    signature_header: ClassVar[str]
    issues_secret: ClassVar[bool] = False
    """True when the provider generates the secret (paste it); False when Cairn does."""
    secret_hint: ClassVar[str] = ""
    kept_headers: ClassVar[tuple[str, ...]] = ()
    tolerance_s: ClassVar[int | None] = None
    accepted_status: ClassVar[int] = 202

    # --- configuration -------------------------------------------------------------

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The validated per-source options; providers without options refuse any."""
        if options:
            raise UsageError(
                f"the {self.name} provider takes no options (got {', '.join(sorted(options))})"
            )
        return {}

    def new_secret(self) -> str:
        """A fresh signing secret for providers where the user pastes Cairn's."""
        return secrets.token_hex(32)

    def check_secret(self, secret: str) -> str:
        """A pasted secret, stripped, or ``UsageError`` saying what the provider's look like."""
        secret = secret.strip()
        if len(secret) < 8:
            raise UsageError(
                f"that {self.title} signing secret is too short ({len(secret)} characters); "
                f"{self.secret_hint}"
            )
        return secret

    # --- one delivery ----------------------------------------------------------------

    def verify(self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]) -> int:
        """Raise ``DeliveryRejected`` unless one of ``secrets`` signed the delivery; return
        the index of the one that did (0 = current, 1 = the previous during rotation)."""
        raise NotImplementedError

    def parse(self, incoming: Incoming, options: Mapping[str, Any]) -> Delivery:
        """Map a verified delivery to Cairn's event (or a handshake reply)."""
        raise NotImplementedError

    def receive(
        self, incoming: Incoming, secrets: Sequence[str], options: Mapping[str, Any]
    ) -> Delivery:
        """Verify, then map; the facts say which secret verified it."""
        if not secrets:
            raise self.refuse(
                incoming,
                "no_secret",
                f"this {self.title} source has no signing secret yet; paste the one "
                f"{self.title} shows with `cairn source webhook rotate <label> --secret …`",
            )
        used = self.verify(incoming, secrets, options)
        delivery = self.parse(incoming, options)
        facts = replace(delivery.facts, secret_used="current" if used == 0 else "previous")
        return replace(delivery, facts=facts, accepted_status=self.accepted_status)

    # --- helpers for subclasses -------------------------------------------------------

    def facts(
        self,
        incoming: Incoming,
        *,
        delivery_id: str | None = None,
        type_from: str | None = None,
        handshake: str | None = None,
        refusal: Refusal | None = None,
    ) -> DeliveryFacts:
        """The delivery facts, with the provider's headers that matter."""
        headers = ((name, incoming.header(name)) for name in self.kept_headers)
        kept = {name: value[:200] for name, value in headers if value is not None}
        return DeliveryFacts(self.name, delivery_id, type_from, kept, handshake, refusal)

    def refuse(
        self, incoming: Incoming, refusal: Refusal, message: str, delivery_id: str | None = None
    ) -> DeliveryRejected:
        """A ``DeliveryRejected`` carrying the refusal code and the provider's facts."""
        return DeliveryRejected(
            f"{self.title}: {message}",
            _HTTP_STATUS[refusal],
            self.facts(incoming, delivery_id=delivery_id, refusal=refusal),
        )

    def required(self, incoming: Incoming, name: str, what: str = "signature") -> str:
        """A header the provider always sends, or an ``unsigned`` refusal naming it."""
        value = incoming.header(name)
        if not value:
            raise self.refuse(
                incoming,
                "unsigned",
                f"missing {name} header: the delivery is not {what}d the way {self.title} "
                f"{what}s (is the source's provider right?)",
            )
        return value

    def check_age(self, incoming: Incoming, timestamp: str, *, millis: bool = False) -> None:
        """Refuse a timestamp that is not a number or is outside ``tolerance_s``."""
        try:
            sent_at = float(timestamp) / (1000 if millis else 1)
        except ValueError:
            raise self.refuse(
                incoming, "bad_timestamp", f"timestamp {timestamp[:20]!r} is not a unix time"
            ) from None
        tolerance = self.tolerance_s or 300
        skew = incoming.received_at - sent_at
        if abs(skew) > tolerance:
            raise self.refuse(
                incoming,
                "stale",
                f"stale delivery: its signed timestamp is {abs(skew):.0f} s from now "
                f"(tolerance {tolerance} s); a replayed or delayed request, or a clock off",
            )

    def bad_signature(self, incoming: Incoming) -> DeliveryRejected:
        """The refusal when no secret matches."""
        return self.refuse(
            incoming,
            "bad_signature",
            f"bad signature: {self.signature_header} does not match this source's signing "
            "secret (a tampered body, or the sender signs with another secret)",
        )

    def matching(self, incoming: Incoming, expected: Sequence[str], offered: Sequence[str]) -> int:
        """The index of the first secret whose signature is among ``offered``
        (``first_match``), or the ``bad_signature`` refusal."""
        used = first_match(expected, offered)
        if used is None:
            raise self.bad_signature(incoming)
        return used

    def json_value(self, incoming: Incoming, raw: bytes | str, what: str) -> Any:
        """``raw`` parsed within Cairn's JSON limits (depth, no NaN), or a ``malformed``
        refusal naming the limit it broke (``cairn.domain.limits``)."""
        from cairn.domain.limits import loads
        from cairn.errors import InvalidJSON

        try:
            return loads(raw, what)
        except InvalidJSON as exc:
            raise self.refuse(incoming, "malformed", str(exc)) from None

    def json_body(self, incoming: Incoming) -> dict[str, Any]:
        """The body as a JSON object, or a ``malformed`` refusal."""
        data = self.json_value(incoming, incoming.body, "the body")
        if not isinstance(data, dict):
            raise self.refuse(incoming, "malformed", "the body is not a JSON object")
        return data


def first_match(expected: Sequence[str], offered: Sequence[str]) -> int | None:
    """The index in ``expected`` of the first secret's signature that is among ``offered``
    (constant-time comparisons), or ``None``."""
    for index, want in enumerate(expected):
        for candidate in offered:
            if hmac.compare_digest(want.encode(), candidate.encode()):
                return index
    return None


def hex_hmac(secret: str, message: bytes) -> str:
    """The hex HMAC-SHA256 of ``message`` under ``secret``: how most senders sign."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
