"""Webhook providers keyed by the name a source's ``config.provider`` holds.

Built-ins register by import path through the same ``cairn.registry.Registry`` a plugin
uses (entry-point group ``cairn.webhook_providers``, whose value names a provider
instance), so a service Cairn does not know yet is one module away.
"""

from __future__ import annotations

from cairn.errors import UnknownWebhookProvider
from cairn.registry import Registry
from cairn.webhooks.base import WebhookProvider

DEFAULT_PROVIDER = "cairn"

webhook_providers: Registry[WebhookProvider] = Registry(
    "webhook provider",
    "cairn.webhook_providers",
    UnknownWebhookProvider,
    {
        "cairn": "cairn.webhooks.providers.cairn:provider",
        "github": "cairn.webhooks.providers.github:provider",
        "stripe": "cairn.webhooks.providers.stripe:provider",
        "slack": "cairn.webhooks.providers.slack:provider",
        "linear": "cairn.webhooks.providers.linear:provider",
        "standard": "cairn.webhooks.providers.standard:provider",
        "hmac": "cairn.webhooks.providers.generic:provider",
    },
)


def get_provider(name: str | None) -> WebhookProvider:
    """The provider called ``name`` (``None``: Cairn's envelope), or ``UnknownWebhookProvider``
    listing the known ones."""
    return webhook_providers.get(name or DEFAULT_PROVIDER)
