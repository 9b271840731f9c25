"""Webhook sources: creation with a provider and its signing secret, secret rotation.

Each source names a provider (``cairn.webhooks.registry``: ``cairn`` — Cairn's own
envelope, the default — ``github``, ``stripe``, ``slack``, ``linear``, ``standard``,
``hmac``). Where the user types a secret into the sender (GitHub, generic HMAC, Cairn's
own) Cairn generates one; where the sender issues it (Stripe, Slack, Linear, Standard
Webhooks) the user pastes it, at creation or later with a rotation, and until then
deliveries are refused as ``no_secret``. The secret is stored sealed and shown once.

``sign`` and ``TOLERANCE_S`` are re-exported from Cairn's own envelope
(``cairn.webhooks.providers.cairn``, docs/webhooks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.deliveries import DeliveryFacts
from cairn.domain.sources import DataSource
from cairn.domain.triggers import Event
from cairn.errors import DeliveryRejected, UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import events as event_store
from cairn.store import sources as source_store
from cairn.store.sandboxes import require_sandbox
from cairn.webhooks.providers.cairn import TOLERANCE_S, sign
from cairn.webhooks.registry import get_provider
from cairn.webhooks.rotation import CURRENT, PREVIOUS

__all__ = [
    "MAX_BODY_BYTES",
    "TOLERANCE_S",
    "DeliveryRejected",
    "NewWebhook",
    "add_webhook_source",
    "record_handshake",
    "rotate_secret",
    "sign",
]

MAX_BODY_BYTES = 256 * 1024
DEFAULT_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A created webhook source: where to send, and the secret (shown once; ``None`` while
    a provider that issues its own is waiting for it to be pasted)."""

    source: DataSource
    path: str
    secret: str | None


def add_webhook_source(
    app: App,
    sandbox_id: str,
    label: str,
    *,
    provider: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
) -> NewWebhook:
    """A webhook source for ``provider`` (default ``cairn``) with a fresh or pasted secret
    (stored sealed, shown once)."""
    if not label.strip():
        raise UsageError("a source needs a non-empty label")
    chosen = get_provider(provider)
    checked_options = chosen.check_options(options or {})
    if secret is not None:
        secret = chosen.check_secret(secret)
    elif not chosen.issues_secret:
        secret = chosen.new_secret()
    source_id = new_id("src")
    path = f"/hooks/{source_id}"
    config: dict[str, Any] = {
        "path": path,
        "secret_fields": ["signing_secret"],
        "provider": chosen.name,
    }
    if checked_options:
        config["provider_options"] = checked_options
    if secret is None:
        config["awaiting_secret"] = True
    source = DataSource(
        source_id,
        sandbox_id,
        "webhook",
        label,
        config,
        secret={CURRENT: secret} if secret else {},
    )
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        source_store.create_source(conn, source, app.secrets)
    return NewWebhook(source, path, secret)


@dataclass(frozen=True, slots=True)
class Rotated:
    """A rotation's result: the new secret (shown once) and until when the old one verifies."""

    source: DataSource
    secret: str
    previous_valid_until: datetime | None


def rotate_secret(
    app: App,
    sandbox_id: str,
    id_or_label: str,
    *,
    secret: str | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> Rotated:
    """Make ``secret`` (pasted, or generated where the provider lets Cairn choose) the
    source's signing secret; the one it replaces keeps verifying for ``overlap`` so senders
    can switch without refused deliveries. A source waiting for its first secret just
    takes it."""
    with app.store.begin() as conn:
        source = source_store.get_source(conn, sandbox_id, id_or_label, app.secrets)
        if source.kind != "webhook":
            raise UsageError(f"source {source.label!r} is a {source.kind} source, not a webhook")
        chosen = get_provider(source.config.get("provider"))
        if secret is not None:
            secret = chosen.check_secret(secret)
        elif chosen.issues_secret:
            raise UsageError(
                f"{chosen.title} issues the signing secret, so paste it with --secret; "
                f"{chosen.secret_hint}"
            )
        else:
            secret = chosen.new_secret()
        config = dict(source.config)
        config.pop("awaiting_secret", None)
        sealed = {CURRENT: secret}
        old = source.secret.get(CURRENT)
        until: datetime | None = None
        if old and old != secret and overlap > timedelta(0):
            until = datetime.now(UTC) + overlap
            sealed[PREVIOUS] = old
            config["previous_secret_until"] = until.isoformat()
        else:
            config.pop("previous_secret_until", None)
        source_store.set_source_secret(
            conn, sandbox_id, source.source_id, sealed, config, app.secrets
        )
    source.config = config
    return Rotated(source, secret, until)


@dataclass(frozen=True, slots=True)
class Answered:
    """A handshake recorded: the event id, or the earlier one for a repeated delivery id."""

    event_id: str
    duplicate: bool


def record_handshake(
    app: App,
    source: DataSource,
    event_type: str,
    payload: Any,
    sender_event_id: str | None,
    delivery: DeliveryFacts,
) -> Answered:
    """Keep a handshake (GitHub's ``ping``, Slack's ``url_verification``) as an event that
    no trigger decides: it shows the sender reached Cairn and signed correctly."""
    event = Event.received_now(source, event_type, payload, sender_event_id, delivery)
    event.decisions = []
    with app.store.begin() as conn:
        existing = event_store.insert_event(conn, event)
    return Answered(existing or event.event_id, existing is not None)
