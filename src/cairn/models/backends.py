"""Model backends, keyed by the name used in ``model_settings.backend``.

A backend factory takes the agent's ``ModelSettings`` and the ``Credentials`` to use and
returns a ``ModelBackend``. Vendor modules (and their SDKs) are imported only when an agent
of theirs fires.
"""

from __future__ import annotations

from collections.abc import Callable

from cairn.domain.agents import ModelSettings
from cairn.errors import UnknownBackend
from cairn.models.base import Credentials, ModelBackend
from cairn.registry import Registry

BackendFactory = Callable[[ModelSettings, Credentials], ModelBackend]

model_backends: Registry[BackendFactory] = Registry(
    "model backend",
    "cairn.model_backends",
    UnknownBackend,
    {
        "scripted": "cairn.models.scripted:ScriptedBackend",
        "anthropic": "cairn.models.anthropic:AnthropicBackend",
        "openai": "cairn.models.openai:OpenAIBackend",
        "google": "cairn.models.google:GoogleBackend",
    },
)


def check_backend_name(name: str) -> str:
    """Return ``name`` if an agent may use it, else raise ``UnknownBackend`` listing the choices."""
    if name not in model_backends:
        raise UnknownBackend(
            f"unknown model backend {name!r}; known: {', '.join(model_backends.names())}"
        )
    return name
