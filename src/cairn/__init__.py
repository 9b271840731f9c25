"""Cairn: a self-hostable runtime for event-driven AI agents, built around a run ledger.

``cairn.Client`` and ``cairn.AsyncClient`` are the Python SDK (imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cairn.client import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from cairn import client

        return getattr(client, name)
    raise AttributeError(f"module 'cairn' has no attribute {name!r}")
