"""The Python SDK: ``cairn.Client`` (sync) and ``cairn.AsyncClient`` (async), in
``cairn.client.sdk``. The package itself imports nothing heavy, so the CLI's in-process
transport (``cairn.client.local``) starts without pydantic or httpx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.client.sdk import AsyncClient, Client, StreamEvent

__all__ = ["AsyncClient", "Client", "StreamEvent"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cairn.client import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'cairn.client' has no attribute {name!r}")
