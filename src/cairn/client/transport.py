"""How the SDK reaches Cairn: one interface that calls operations by name, and its
implementations.

Every call names an operation of the table (``cairn.api.table``) with its parameters (the
fields of its path and its query parameters, by name) and its JSON body. ``HttpTransport``
formats the operation's URL and talks to a server (``CAIRN_URL``) with httpx;
``LocalTransport`` runs the operation in this process over the local ledger, so the CLI
works with no server started and starts fast. Both return decoded JSON and raise
``cairn.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: ``id`` (run events: the seq; tails: the run id), name, data."""

    id: str | None
    event: str
    data: Any


class Transport(Protocol):
    """Synchronous transport."""

    sandbox: str

    def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """Perform operation ``operation`` (its path and query ``params``, its ``body``)."""
        ...

    def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Follow a stream operation, reconnecting and resuming by itself until it ends."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncTransport(Protocol):
    """Asynchronous transport (the same calls, awaited)."""

    sandbox: str

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """Perform operation ``operation`` (its path and query ``params``, its ``body``)."""
        ...

    def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Follow a stream operation, reconnecting and resuming by itself until it ends."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
