"""What Cairn knows about how an event arrived: the provider that signed it, the sender's
delivery id, where its type came from, and the headers that matter.

Kept beside the event (``Event.delivery``) so ``cairn events explain`` and the dashboard
can say "GitHub delivery 72d3162e…, type from X-GitHub-Event + action" instead of leaving
the reader to guess from the payload. Never holds a secret or a signature.

Refusal codes (``refusal``) are a closed vocabulary so a diagnosis reads a field, not the
reason's wording:

=======================  ===========================================================
refusal                  meaning
=======================  ===========================================================
``unsigned``             the provider's signature (or timestamp) header is missing
``bad_signature``        no signing secret of the source matches the signature
``stale``                the signed timestamp is outside the provider's tolerance
``bad_timestamp``        the timestamp header is not a number
``malformed``            the body is not what the provider sends (JSON, type, id)
``unknown_event_type``   a well-signed body of a kind Cairn cannot map to an event
``no_secret``            the source is still waiting for the provider's secret
``too_large``            the body is over the size limit
=======================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cairn.text import from_record, record

Refusal = Literal[
    "unsigned",
    "bad_signature",
    "stale",
    "bad_timestamp",
    "malformed",
    "unknown_event_type",
    "no_secret",
    "too_large",
]
SecretUsed = Literal["current", "previous"]


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """How one delivery arrived (see the module docstring)."""

    provider: str
    delivery_id: str | None = None
    type_from: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    handshake: str | None = None
    refusal: Refusal | None = None
    secret_used: SecretUsed | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored and shown form."""
        return record(self) | {"headers": dict(self.headers)}


def delivery_from_dict(data: dict[str, Any] | None) -> DeliveryFacts | None:
    """Inverse of ``DeliveryFacts.to_dict`` (``None`` for events stored without facts)."""
    if not data:
        return None
    return from_record(
        DeliveryFacts,
        data,
        provider=str(data.get("provider") or "cairn"),
        headers=dict(data.get("headers") or {}),
    )
