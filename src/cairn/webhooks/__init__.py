"""Webhooks from the services people already use: one provider per sender, behind one
interface (``cairn.webhooks.base.WebhookProvider``), chosen by the source's
``config.provider`` (``cairn.webhooks.registry``).

``read_delivery`` is the one call the HTTP layer makes: it finds the source's provider and
its live signing secrets (``cairn.webhooks.rotation``) and returns the mapped ``Delivery``,
or raises ``cairn.errors.DeliveryRejected`` with the provider's reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from cairn.domain.sources import DataSource
from cairn.webhooks.base import Delivery, Incoming
from cairn.webhooks.registry import get_provider
from cairn.webhooks.rotation import live_secrets


def read_delivery(
    source: DataSource, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> Delivery:
    """Verify and map one delivery to ``source`` (see the package docstring)."""
    provider = get_provider(source.config.get("provider"))
    received_at = time.time() if now is None else now
    incoming = Incoming({k.lower(): v for k, v in headers.items()}, body, received_at)
    return provider.receive(
        incoming,
        live_secrets(source, received_at),
        source.config.get("provider_options") or {},
    )
